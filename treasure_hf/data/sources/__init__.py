"""Converters from the experiments' own files (ATLAS PHYSLITE, CMS NanoAOD; TTree or RNTuple,
read with uproot; EDM4hep files of future e+e- colliders) to the common format. See
:func:`convert.convert_files` and ``treasure convert``."""
