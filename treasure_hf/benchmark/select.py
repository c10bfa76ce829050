"""``treasure select``: keep the events that pass a registered selection preset, in the input's
format (PCDF -> PCDF, HDF5 -> HDF5), streaming in chunks of events.

:data:`PRESETS` names each selection; ``4l`` is the four-lepton selection of
:mod:`treasure_hf.benchmark.selection`. Events keep every object and field they had (PCDF
events are selected ragged, nothing is padded away); the metadata ``notes`` record the preset.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.events import EventBatch, Layout
from ..data.h5 import H5Writer
from ..data.io import DEFAULT_STEP, open_events
from ..data.outputs import check_destination
from ..data.pcdf import PCDFSource, PCDFWriter
from ..errors import ArgumentError, positive
from ..progress import tqdm
from .selection import Selection4l, select_4l

logger = logging.getLogger(__name__)

PRODUCER = "select"


@dataclass(frozen=True)
class Preset:
    """A named event selection: ``passes(batch)`` -> (n_events,) bool over padded events."""

    name: str
    description: str
    passes: Callable[[EventBatch], np.ndarray]


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "4l",
            "H -> ZZ* -> 4l four-lepton selection: " + Selection4l().describe(),
            lambda batch: select_4l(batch).passed,
        ),
    )
}


@dataclass(frozen=True)
class SelectionResult:
    path: Path
    n_events: int
    n_selected: int


def select_events(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    preset: str = "4l",
    step: int = DEFAULT_STEP,
    progress: bool = True,
    overwrite: bool = False,
) -> SelectionResult:
    """Write the events of ``src`` (PCDF directory or HDF5 file) that pass ``preset`` to ``dst``,
    in the same format. ``step`` sets the memory, never the events kept. An existing ``dst`` is
    replaced only if ``treasure select`` wrote it, or with ``overwrite``."""
    if preset not in PRESETS:
        raise ArgumentError("--preset", f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    positive("step", step)
    check_destination(dst, PRODUCER, inputs=(src,), overwrite=overwrite)
    chosen = PRESETS[preset]
    source = open_events(src)
    kept = 0
    try:
        ragged = isinstance(source, PCDFSource)
        if ragged:
            layout = source.layout
        else:
            layout = source.read(0, 0).layout
            layout = Layout(
                layout.layers, layout.sub_groups, {**layout.max_objects, **source.metadata.get("max_objects", {})}
            )
        metadata = dict(source.metadata)
        notes = metadata.get("notes")
        notes = dict(notes) if isinstance(notes, dict) else ({"notes": notes} if notes else {})
        metadata["notes"] = {**notes, "selection": f"treasure select --preset {preset}: {chosen.description}"}
        writer_cls = PCDFWriter if ragged else H5Writer
        with (
            writer_cls(dst, metadata, layout, producer=PRODUCER, inputs=(src,), overwrite=overwrite) as writer,
            tqdm(total=source.n_events, unit="ev", desc=f"select {preset}", disable=not progress) as bar,
        ):
            for lo, hi in source.ranges(step):
                if ragged:
                    events = source.read_ragged(lo, hi)
                    passed = np.asarray(chosen.passes(events.to_padded(layout.max_objects)), bool)
                    writer.write(events.select(passed))
                else:
                    batch = source.read(lo, hi)
                    passed = np.asarray(chosen.passes(batch), bool)
                    writer.write(batch.select(passed))
                kept += int(passed.sum())
                bar.update(hi - lo)
        n_events = source.n_events
    finally:
        source.close()
    logger.info("%s: %d of %d events pass %s", dst, kept, n_events, preset)
    return SelectionResult(Path(dst), n_events, kept)
