"""``PCDFEvents``: a ``datasets.ArrowBasedBuilder`` from PCDF directories (or common HDF5 files)
to one row per event with a list of structs per object type (see
:mod:`treasure_hf.hf.events_table` for the row layout).

Used from code, not as a loading script::

    builder = PCDFEvents(data_files={"train": ["zjets.pcdf"]}, types=("electrons", "jets"))
    builder.download_and_prepare(); ds = builder.as_dataset("train")
    stream = builder.as_streaming_dataset("train")     # reads part by part, nothing cached

or simply ``treasure_hf.load_pcdf("zjets.pcdf", streaming=True)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import pyarrow as pa
from datasets.builder import Key

from treasure_hf.data import schema
from treasure_hf.data.io import open_events
from treasure_hf.data.pcdf import PCDFSource
from treasure_hf.hf.events_table import arrow_schema, events_to_arrow

DEFAULT_STEP = 10_000
"""Events per Arrow table (one PCDF part is split further into steps of this size)."""


@dataclass
class PCDFEventsConfig(datasets.BuilderConfig):
    """``types``: object types, each a list column (default: every type); ``layers``: layers
    besides ``common`` (default: those of the first file); ``sub_groups``: sub-objects nested in
    their parents (``constituents``, ``hits``); ``step``: events per Arrow table."""

    types: tuple[str, ...] = schema.OBJECT_TYPES
    layers: tuple[str, ...] | None = None
    sub_groups: tuple[str, ...] = ()
    step: int = DEFAULT_STEP
    paths: dict[str, list[str]] = field(default_factory=dict)


class PCDFEvents(datasets.ArrowBasedBuilder):
    """Events of PCDF directories or common HDF5 files, one row each. Splits are given by
    ``paths={"train": [...], "test": [...]}``."""

    BUILDER_CONFIG_CLASS = PCDFEventsConfig
    DEFAULT_WRITER_BATCH_SIZE = 1000

    def _layers(self) -> tuple[str, ...]:
        if self.config.layers is not None:
            return tuple(self.config.layers)
        first = next(p for ps in self.config.paths.values() for p in ps)
        source = open_events(first)
        try:
            return tuple(source.layout.layers) if isinstance(source, PCDFSource) else tuple(source.read(0, 0).layers)
        finally:
            source.close()

    def _info(self) -> datasets.DatasetInfo:
        if not self.config.paths:
            raise ValueError("PCDFEvents needs paths={'split': [PCDF directories or HDF5 files]}")
        self._resolved_layers = self._layers()
        features = datasets.Features.from_arrow_schema(
            arrow_schema(self.config.types, self._resolved_layers, self.config.sub_groups)
        )
        return datasets.DatasetInfo(description="treasure-hf events, one row per event", features=features)

    def _split_generators(self, dl_manager: datasets.DownloadManager) -> list[datasets.SplitGenerator]:
        splits = []
        for name, paths in self.config.paths.items():
            shards = []  # (path, first event, last event + 1): one per PCDF part, so streaming can shard
            for path in paths:
                source = open_events(path)
                try:
                    ranges = list(source.ranges()) if isinstance(source, PCDFSource) else [(0, source.n_events)]
                finally:
                    source.close()
                shards += [(os.fspath(path), lo, hi) for lo, hi in ranges]
            splits.append(datasets.SplitGenerator(name=name, gen_kwargs={"shards": shards}))
        return splits

    def _generate_shards(self, shards: list[tuple[str, int, int]]) -> Iterator[str]:
        for path, lo, hi in shards:
            yield f"{path}[{lo}:{hi}]"

    def _generate_tables(self, shards: list[tuple[str, int, int]]) -> Iterator[tuple[Key, pa.Table]]:
        layers = getattr(self, "_resolved_layers", None) or self._layers()
        for shard_id, (path, lo, hi) in enumerate(shards):
            source = open_events(path)
            try:
                for batch_id, start in enumerate(range(lo, hi, self.config.step)):
                    stop = min(start + self.config.step, hi)
                    ragged = (
                        source.read_ragged(start, stop)
                        if isinstance(source, PCDFSource)
                        else source.read(start, stop).to_ragged()
                    )
                    yield (
                        Key(shard_id, batch_id),
                        events_to_arrow(ragged, self.config.types, layers, self.config.sub_groups, first_event=start),
                    )
            finally:
                source.close()


def fingerprint(paths: dict[str, list[str]]) -> str:
    """A short hash of the inputs' names, sizes and modification times (the cache key)."""
    import hashlib

    h = hashlib.sha256()
    for split, ps in sorted(paths.items()):
        for p in ps:
            path = Path(p)
            files = sorted(path.rglob("*")) if path.is_dir() else [path]
            for f in files:
                if f.is_file():
                    st = f.stat()
                    h.update(f"{split}|{f.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]
