"""One entry point for both formats, and the streaming conversions between them."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from ..errors import ArgumentError, FormatError, positive
from ..progress import tqdm
from . import schema
from .events import EventBatch, Layout
from .h5 import H5Source, H5Writer
from .outputs import check_destination
from .pcdf import PCDFSource, PCDFWriter

logger = logging.getLogger(__name__)

DEFAULT_STEP = 50_000
"""Events per streamed chunk: bounds the memory of conversions whatever the file size."""


def open_events(path: str | os.PathLike) -> H5Source | PCDFSource:
    """Open a common-format HDF5 file or a PCDF directory for reading in slices."""
    path = Path(path)
    if path.is_dir():
        return PCDFSource(path)
    if not path.exists():
        raise FormatError(path, None, "no such file or directory")
    return H5Source(path)


def read_events(path: str | os.PathLike, start: int | None = None, stop: int | None = None) -> EventBatch:
    """Events ``[start, stop)`` of a file of either format, padded as in the HDF5 layout.

    Returns an :class:`EventBatch`: ``batch["common/jets/pt"]`` is ``(n_events, max_jets)`` in
    GeV, ``batch.mask("jets")`` tells the real jets apart from padding.
    """
    source = open_events(path)
    try:
        return source.read(start, stop)
    finally:
        source.close()


def pcdf_to_h5(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    step: int = DEFAULT_STEP,
    max_objects: Mapping[str, int] | None = None,
    pt_cuts: Mapping[str, float] | None = None,
    progress: bool = True,
    overwrite: bool = False,
    producer: str = "pcdf-to-h5",
    **h5_options,
) -> Path:
    """Convert a PCDF directory to common HDF5, chunk by chunk (objects beyond ``max_objects``
    are dropped; ``n`` keeps their count). ``pt_cuts`` (type -> GeV) drops the objects below
    their cut first; the metadata ``pt_cuts`` records the tighter of the old and new cut.
    ``step`` sets the memory, never the events written. An existing ``dst`` is replaced only if
    ``producer`` wrote it, or with ``overwrite``."""
    positive("step", step)
    for g, width in (max_objects or {}).items():
        positive(f"max_objects[{g}]", width)
    pt_cuts = dict(pt_cuts or {})
    for g, cut in pt_cuts.items():
        if g not in schema.OBJECT_TYPES:
            raise ArgumentError("pt_cuts", f"{g!r} is not an object type; choose from {list(schema.OBJECT_TYPES)}")
        if isinstance(cut, bool) or not isinstance(cut, (int, float)) or not cut >= 0:
            raise ArgumentError(f"pt_cuts[{g}]", f"must be a number of GeV >= 0, got {cut!r}")
    check_destination(dst, producer, inputs=(src,), overwrite=overwrite)
    with PCDFSource(src) as source:
        layout = source.layout
        if max_objects:
            layout = Layout(layout.layers, layout.sub_groups, {**layout.max_objects, **max_objects})
        metadata = dict(source.metadata)
        if pt_cuts:
            old = dict(metadata.get("pt_cuts") or {})
            metadata["pt_cuts"] = {**old, **{g: max(float(old.get(g, 0.0)), float(c)) for g, c in pt_cuts.items()}}
        with (
            H5Writer(
                dst, metadata, layout, producer=producer, inputs=(src,), overwrite=overwrite, **h5_options
            ) as writer,
            tqdm(total=source.n_events, unit="ev", desc="pcdf->h5", disable=not progress) as bar,
        ):
            for lo, hi in source.ranges(step):
                events = source.read_ragged(lo, hi)
                if pt_cuts:
                    events = events.apply_pt_cuts(pt_cuts)
                writer.write(events.to_padded(layout.max_objects))
                bar.update(hi - lo)
    return Path(dst)


def h5_to_pcdf(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    step: int = DEFAULT_STEP,
    progress: bool = True,
    overwrite: bool = False,
    producer: str = "h5-to-pcdf",
    **pcdf_options,
) -> Path:
    """Convert a common HDF5 file to a PCDF directory, reading ``step`` events at a time (memory;
    the parts are set by ``events_per_part`` and ``rows_per_part`` of :class:`PCDFWriter`). An
    existing ``dst`` is replaced only if ``producer`` wrote it, or with ``overwrite``."""
    positive("step", step)
    check_destination(dst, producer, inputs=(src,), overwrite=overwrite)
    with H5Source(src) as source:
        first = source.read(0, 0)
        layout = first.layout
        layout = Layout(
            layout.layers, layout.sub_groups, {**layout.max_objects, **source.metadata.get("max_objects", {})}
        )
        with (
            PCDFWriter(
                dst, source.metadata, layout, producer=producer, inputs=(src,), overwrite=overwrite, **pcdf_options
            ) as writer,
            tqdm(total=source.n_events, unit="ev", desc="h5->pcdf", disable=not progress) as bar,
        ):
            for batch in source.iter_batches(step):
                writer.write(batch)
                bar.update(batch.n_events)
    return Path(dst)
