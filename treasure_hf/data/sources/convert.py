"""The multi-file driver: one common-format output per input file, each written atomically, in
steps of events; serially, on a Dask LocalCluster or on a running scheduler; resumable (a rerun
skips the outputs whose metadata says they are complete)."""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ...errors import InputError, OutputError, TreasureError, positive
from ...provenance import file_fingerprint, fingerprint_change
from .. import schema
from ..atomic import remove_leftovers
from ..events import EventBatch
from ..h5 import H5Writer
from ..io import open_events
from ..metadata import make_metadata
from ..outputs import check_destination, producer_of
from ..pcdf import PCDFWriter
from .reader import DEFAULT_STEP, RootSource, TableConverter

logger = logging.getLogger(__name__)

CONVERTERS: dict[str, str] = {
    "atlas": "treasure_hf.data.sources.atlas:AtlasConverter",
    "cms": "treasure_hf.data.sources.cms:CmsConverter",
    "edm4hep": "treasure_hf.data.sources.edm4hep:Edm4hepConverter",
}
"""Experiment name on the command line -> converter class."""

FORMATS = ("h5", "pcdf")
PRODUCER = "convert"


def converter_class(experiment: str) -> type[TableConverter]:
    try:
        module, _, name = CONVERTERS[experiment].partition(":")
    except KeyError:
        raise ValueError(f"unknown experiment {experiment!r}; choose one of {sorted(CONVERTERS)}") from None
    return getattr(importlib.import_module(module), name)


def output_path(input_file: str | os.PathLike, out_dir: str | os.PathLike, fmt: str) -> Path:
    """``OUT/NAME.h5`` or ``OUT/NAME`` (a PCDF directory) for input ``NAME.root``."""
    name = Path(input_file).name
    stem = name[: -len(".root")] if name.endswith(".root") else name
    return Path(out_dir) / (f"{stem}.h5" if fmt == "h5" else stem)


def output_paths(inputs: Sequence[str | os.PathLike], out: str | os.PathLike, fmt: str) -> list[Path]:
    """Where each input goes: ``out`` itself for one input and an ``out`` ending in ``.h5`` (an
    HDF5 file, not an existing directory), else one output per input in the directory ``out``."""
    out = Path(out)
    if out.suffix == ".h5" and not out.is_dir():
        if len(inputs) != 1:
            raise InputError(
                None,
                "--out",
                f"{out} ends in .h5 but {len(inputs)} inputs need one output each: "
                f"--out is a directory when converting several files",
            )
        if fmt != "h5":
            raise InputError(
                None, "--out", f"{out} ends in .h5 but the format is {fmt}: give a directory for a PCDF output"
            )
        return [out]
    return [output_path(i, out, fmt) for i in inputs]


@dataclass(frozen=True)
class ConvertTask:
    """One input file to convert (picklable: it travels to Dask workers)."""

    experiment: str
    input_file: str
    output: str
    fmt: str = "h5"
    pt_cuts: Mapping[str, float] = field(default_factory=dict)
    max_objects: Mapping[str, int] = field(default_factory=dict)
    step_size: int = DEFAULT_STEP
    progress: bool = False
    overwrite: bool = False
    drop_invalid: bool = False
    require: tuple[str, ...] = ()
    """Object types whose collection the input must hold (a missing one is an error, not an empty group)."""
    options: Any = None
    """The converter's own settings (its ``OPTIONS`` dataclass, e.g. the EDM4hep --bfield), or None."""

    def __str__(self) -> str:
        return self.input_file


def is_complete(task: ConvertTask) -> bool:
    """True when the task's output exists and its metadata says it holds this input, unchanged
    since (size, modification time and a hash of its ends: :func:`~treasure_hf.provenance.file_fingerprint`),
    converted with these settings, to the end (outputs are renamed into place only when
    finished, and the metadata's n_events must agree with the events the output holds)."""
    out = Path(task.output)
    if not out.exists() or producer_of(out) != PRODUCER:
        return False
    try:
        source = open_events(out)
        try:
            meta, n_events = source.metadata, source.n_events
        finally:
            source.close()
    except TreasureError as exc:
        logger.warning("%s exists but cannot be read (%s): converting again", out, exc)
        return False
    changed = fingerprint_change(meta.get("input_fingerprint"), file_fingerprint(task.input_file))
    if changed:
        logger.info("%s: converting again: %s was converted before, but %s", out, task.input_file, changed)
        return False
    experiment = converter_class(task.experiment).EXPERIMENT
    wanted_cuts = {**schema.default_pt_cuts(), **task.pt_cuts}
    wanted_max = {**schema.default_max_objects(), **task.max_objects}
    stored_max = meta.get("max_objects", {})
    complete = (
        meta.get("experiment") == experiment
        and meta.get("input_file") == str(task.input_file)
        and int(meta.get("n_events", -1)) == n_events
        and meta.get("pt_cuts") == wanted_cuts
        and all(stored_max.get(g) == n for g, n in wanted_max.items() if g in stored_max)
        and bool(meta.get("dropped_invalid") is not None) == task.drop_invalid
        and not set(task.require) & set(meta.get("missing_collections", []))
        and meta.get("converter_options", {}) == options_record(task.options)
    )
    if not complete:
        logger.info("%s exists but was written from another input or with other settings: converting again", out)
    return complete


def convert_file(task: ConvertTask) -> dict[str, Any]:
    """Convert one file; returns a summary (input, output, n_events, skipped). Nothing is left at
    ``task.output`` when it fails."""
    if task.fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {task.fmt!r}")
    remove_leftovers(task.output)
    if is_complete(task):
        logger.info("%s is complete: skipped", task.output)
        return {"input": task.input_file, "output": task.output, "skipped": True}
    check_destination(task.output, PRODUCER, inputs=(task.input_file,), overwrite=task.overwrite)
    cls = converter_class(task.experiment)
    with RootSource(task.input_file, cls.TREE_NAMES, cls.FORMAT_NAME) as source:
        n_events = convert_source(source, task)
    logger.info("%s -> %s (%d events)", task.input_file, task.output, n_events)
    return {"input": task.input_file, "output": task.output, "n_events": n_events, "skipped": False}


def convert_source(source: RootSource, task: ConvertTask) -> int:
    """Stream an opened source into ``task.output`` step by step; returns the events written.
    The output appears only when complete (written under a temporary name, then renamed)."""
    cls = converter_class(task.experiment)
    conv = cls(
        source, task.pt_cuts, task.max_objects, task.require, drop_invalid=task.drop_invalid, options=task.options
    )
    layout = conv.layout
    meta = converted_metadata(conv, task.input_file)
    where = {"producer": PRODUCER, "inputs": (task.input_file,), "overwrite": task.overwrite}
    writer = (
        H5Writer(task.output, meta, layout, **where)
        if task.fmt == "h5"
        else PCDFWriter(task.output, meta, layout, **where)
    )
    try:
        for _, padded in stream_converted(source, conv, task.step_size, progress=task.progress):
            writer.write(padded if task.fmt == "h5" else padded.to_ragged())
    except BaseException:
        writer.abort()
        raise
    if task.drop_invalid:
        writer.metadata["dropped_invalid"] = dict(conv.dropped)
    writer.close()
    return writer.n_events


def converted_metadata(conv: TableConverter, input_file: str | os.PathLike) -> dict[str, Any]:
    """The metadata of ``input_file`` converted by ``conv``: experiment, layers, cuts, padding,
    what the file lacked, and its fingerprint."""
    layout = conv.layout
    extra = conv.metadata()
    if conv.options is not None:
        extra["converter_options"] = options_record(conv.options)
    return make_metadata(
        conv.EXPERIMENT,
        os.fspath(input_file),
        layers=layout.layers,
        max_objects=layout.metadata_max_objects(),
        pt_cuts=conv.pt_cuts,
        missing_fields=conv.missing_fields,
        notes=conv.notes,
        input_fingerprint=file_fingerprint(input_file),
        **extra,
    )


def options_record(options: Any) -> dict[str, Any]:
    """A converter's options as the metadata ``converter_options`` records them (unset ones left out)."""
    if options is None:
        return {}
    return {k: v for k, v in dataclasses.asdict(options).items() if v is not None}


def stream_converted(
    source: RootSource, conv: TableConverter, step_size: int = DEFAULT_STEP, *, progress: bool = False
) -> Iterator[tuple[int, EventBatch]]:
    """``(first entry, events)`` of an opened experiment file, converted step by step in memory
    and padded to the converter's ``max_objects``. One reader thread keeps the next step's read
    going while this step converts (uproot's decompression releases the GIL): at most two steps
    are in memory."""
    branches = conv.branches()
    steps = list(source.steps(conv.step_size(step_size)))
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="treasure-read") as pool,
        tqdm(total=source.n_events, unit="ev", desc=source.path.name, disable=not progress) as bar,
    ):
        pending = pool.submit(source.read, branches, *steps[0]) if steps else None
        for i, (start, stop) in enumerate(steps):
            arrays = pending.result()
            pending = pool.submit(source.read, branches, *steps[i + 1]) if i + 1 < len(steps) else None
            ragged = conv.convert(arrays, stop - start, first_entry=start)
            del arrays
            yield start, ragged.to_padded(conv.layout.max_objects)
            bar.update(stop - start)


def experiment_of(path: str | os.PathLike) -> str:
    """Which converter reads an experiment's file, told by its event tree (PHYSLITE's
    ``CollectionTree``/``EventData``, NanoAOD's ``Events``, EDM4hep's ``events``)."""
    import uproot

    try:
        with uproot.open(path) as f:
            present = {k.split(";")[0] for k in f.keys(recursive=False)}
    except Exception as exc:
        raise InputError(path, None, f"cannot be read as a ROOT file: {' '.join(str(exc).split())}") from None
    for name in CONVERTERS:
        if present & set(converter_class(name).TREE_NAMES):
            return name
    raise InputError(
        path, None, f"holds none of the event trees of {sorted(CONVERTERS)} (found {sorted(present)[:10]})"
    )


def convert_files(
    experiment: str,
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    fmt: str = "h5",
    pt_cuts: Mapping[str, float] | None = None,
    max_objects: Mapping[str, int] | None = None,
    step_size: int = DEFAULT_STEP,
    workers: int = 1,
    scheduler: str | None = None,
    keep_going: bool = False,
    progress: bool = True,
    overwrite: bool = False,
    drop_invalid: bool = False,
    require: Sequence[str] = (),
    options: Any = None,
) -> list:
    """Convert every input to ``out_dir`` (one output each; see :func:`output_paths` for a single
    ``.h5`` output); returns the :class:`treasure_hf.parallel.TaskResult` list, in input order.
    An existing output is replaced only when ``treasure convert`` wrote it, or with ``overwrite``;
    NaN, infinite or negative pT in an input are an error, or with ``drop_invalid`` dropped and
    counted in the metadata ``dropped_invalid``. ``require``: object types whose collection every
    input must hold. ``options``: the converter's own settings (an instance of its ``OPTIONS``)."""
    from ...parallel import map_tasks

    cls = converter_class(experiment)
    if options is not None and (cls.OPTIONS is None or not isinstance(options, cls.OPTIONS)):
        raise InputError(
            None, "options", f"the {experiment} converter takes {cls.OPTIONS.__name__ if cls.OPTIONS else 'no'} options"
        )
    positive("step_size", step_size)
    positive("workers", workers)
    for g, width in (max_objects or {}).items():
        positive(f"max_objects[{g}]", width)
    outputs = output_paths(inputs, out_dir, fmt)
    dupes = {str(o) for o in outputs if outputs.count(o) > 1}
    if dupes:
        raise InputError(None, None, f"several inputs would write the same output: {sorted(dupes)}")
    for parent in {o.parent for o in outputs}:
        if parent.exists() and not parent.is_dir():
            raise OutputError(parent, None, "is a file: --out is the directory that receives one output per input")
        parent.mkdir(parents=True, exist_ok=True)
    serial = scheduler is None and workers <= 1
    tasks = [
        ConvertTask(
            experiment,
            str(i),
            str(o),
            fmt,
            dict(pt_cuts or {}),
            dict(max_objects or {}),
            step_size,
            progress and serial and len(inputs) == 1,
            overwrite,
            drop_invalid,
            tuple(require),
            options,
        )
        for i, o in zip(inputs, outputs)
    ]
    return map_tasks(
        convert_file,
        tasks,
        workers=workers,
        scheduler=scheduler,
        keep_going=keep_going,
        desc=f"convert {experiment}",
        progress=progress,
    )


__all__ = [
    "ConvertTask",
    "convert_file",
    "convert_files",
    "convert_source",
    "experiment_of",
    "is_complete",
    "output_path",
    "output_paths",
    "stream_converted",
]
