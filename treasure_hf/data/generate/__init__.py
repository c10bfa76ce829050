"""Labelled collision samples: Pythia 8 events, FastJet jets and a parametric ATLAS-like or
CMS-like detector response, written in the common format (``treasure generate``).

Modules, one job each: :mod:`.processes` (named presets, as data), :mod:`.pythia` (running
Pythia and reading its event record into numpy), :mod:`.truth` (ancestry, truth origin, heavy
hadrons), :mod:`.jets` (anti-kt with ghost-matched flavour), :mod:`.detector` (the response and
the reconstructed objects), :mod:`.generator` (seeded shards, Dask, resumable PCDF writing).
"""
