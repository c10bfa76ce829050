"""Data set exports: plain Parquet shards ``data/SPLIT-00000-of-00003.parquet`` and a
``README.md`` dataset card whose YAML ``configs:`` lets stock ``datasets.load_dataset(DIR)``
(or a hub repo) load them without treasure_hf. The whole directory is written under a temporary
name and renamed when complete."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..data import schema
from ..data.atomic import commit, remove, temporary_directory, write_json
from ..data.io import open_events
from ..data.outputs import check_destination, write_marker
from ..data.pcdf import PCDFSource
from ..errors import ArgumentError, positive
from ..progress import tqdm
from .events_table import EVENT_INDEX, arrow_schema, events_to_arrow

logger = logging.getLogger(__name__)

DATA_DIR = "data"
ROWS_PER_SHARD = 250_000
ROW_GROUP_SIZE = 10_000
INPUTS_FILE = "inputs.json"
"""Written with a data set: per input file, what its metadata says about it (experiment,
simulation or collision data, collections it lacks)."""
INPUT_ATTRIBUTES = ("experiment", "is_simulation", "missing_collections")


def hf_schema(schema_: pa.Schema, features: Any = None) -> pa.Schema:
    """The Arrow schema with the ``datasets`` features in its metadata (ClassLabel names etc.)."""
    import datasets

    feats = features if features is not None else datasets.Features.from_arrow_schema(schema_)
    meta = {b"huggingface": json.dumps({"info": {"features": feats.to_dict()}}).encode()}
    return schema_.with_metadata({**(schema_.metadata or {}), **meta})


class ParquetShardWriter:
    """Append Arrow tables to per-split Parquet shards of at most ``rows_per_shard`` rows, in a
    temporary directory; :meth:`close` names the shards ``-of-N``, writes the card and renames."""

    def __init__(
        self,
        directory: str | os.PathLike,
        schema_: pa.Schema,
        *,
        rows_per_shard: int = ROWS_PER_SHARD,
        row_group_size: int = ROW_GROUP_SIZE,
        compression: str = "zstd",
        producer: str = "export",
        inputs: Sequence[str | os.PathLike] = (),
        overwrite: bool = False,
    ):
        self.directory = Path(directory)
        self.producer, self.inputs, self.overwrite = producer, tuple(inputs), overwrite
        check_destination(self.directory, producer, inputs=self.inputs, overwrite=overwrite)
        positive("rows_per_shard", rows_per_shard)
        self.schema = schema_
        self.rows_per_shard = rows_per_shard
        self.row_group_size = row_group_size
        self.compression = compression
        self.tmp = temporary_directory(self.directory)
        (self.tmp / DATA_DIR).mkdir()
        self._writers: dict[str, tuple[pq.ParquetWriter, int]] = {}
        self.shards: dict[str, list[Path]] = {}
        self.rows: dict[str, int] = {}

    def add_split(self, split: str) -> None:
        self.shards.setdefault(split, [])
        self.rows.setdefault(split, 0)

    def write(self, split: str, table: pa.Table) -> None:
        self.add_split(split)
        table = table.cast(self.schema)
        while table.num_rows:
            writer, rows = self._writers.get(split, (None, 0))
            if writer is None:
                path = self.tmp / DATA_DIR / f"{split}-{len(self.shards[split]):05d}.parquet"
                writer = pq.ParquetWriter(
                    path, self.schema, compression=self.compression, write_statistics=True, write_page_checksum=True
                )
                self.shards[split].append(path)
            take = min(table.num_rows, self.rows_per_shard - rows)
            writer.write_table(table.slice(0, take), row_group_size=self.row_group_size)
            table = table.slice(take)
            rows += take
            self.rows[split] += take
            if rows >= self.rows_per_shard:
                writer.close()
                self._writers.pop(split, None)
            else:
                self._writers[split] = (writer, rows)

    def dataset_info(self) -> dict[str, Any]:
        """The card's ``dataset_info`` (after the shards are final): splits with their events and
        bytes on disk. It also keys ``datasets``' cache of a local folder, so a folder written
        again with other events is not served from the old cache."""
        splits = [
            {"name": s, "num_examples": self.rows[s], "num_bytes": sum(p.stat().st_size for p in paths)}
            for s, paths in self.shards.items()
        ]
        return {"config_name": "default", "splits": splits, "download_size": sum(x["num_bytes"] for x in splits)}

    def close(self, card: str | Callable[[ParquetShardWriter], str] | None = None) -> Path:
        """Finish the shards, write the card (text, or a function of this writer, called once the
        shards are final) and move the folder to its name."""
        try:
            for writer, _ in self._writers.values():
                writer.close()
            self._writers.clear()
            for split, paths in self.shards.items():
                if not paths:  # an empty split still gets one file with the schema
                    path = self.tmp / DATA_DIR / f"{split}-00000.parquet"
                    pq.write_table(self.schema.empty_table(), path)
                    paths.append(path)
                n = len(paths)
                self.shards[split] = [
                    p.rename(p.with_name(f"{split}-{i:05d}-of-{n:05d}.parquet")) for i, p in enumerate(paths)
                ]
            if card is not None:
                (self.tmp / "README.md").write_text(card if isinstance(card, str) else card(self))
            write_marker(self.tmp, self.producer)
            check_destination(self.directory, self.producer, inputs=self.inputs, overwrite=self.overwrite)
        except BaseException:
            self.abort()
            raise
        commit(self.tmp, self.directory)
        logger.info("wrote %s to %s", {s: r for s, r in self.rows.items()}, self.directory)
        return self.directory

    def abort(self) -> None:
        for writer, _ in self._writers.values():
            writer.close()
        self._writers.clear()
        remove(self.tmp)

    def __enter__(self) -> ParquetShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


def configs_yaml(splits: Iterable[str]) -> list[dict[str, Any]]:
    """The card's ``configs:`` entry: one default config, one glob per split."""
    return [
        {
            "config_name": "default",
            "default": True,
            "data_files": [{"split": s, "path": f"{DATA_DIR}/{s}-*.parquet"} for s in splits],
        }
    ]


def describe_columns(schema_: pa.Schema, docs: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"name": f.name, "type": str(f.type), "doc": docs.get(f.name, "")} for f in schema_]


def event_column_docs(types: Sequence[str]) -> dict[str, str]:
    """One line per column of the event rows, from the registry."""
    docs = {EVENT_INDEX: "position of the event in its input"}
    for layer in schema.LAYERS:
        for g in schema.EVENT_GROUPS:
            for f in schema.fields(layer, g):
                unit = f" [{f.unit}]" if f.unit else ""
                docs[schema.pcdf_column(layer, g, f.name)] = f"{layer} {g} {f.name}{unit} {f.doc}".strip()
    for t in types:
        docs[t] = f"list of {t} in descending pT, a struct of their fields per object (GeV, rad, mm)"
    return docs


def check_unique_inputs(paths: Sequence[str | os.PathLike]) -> list[str]:
    """The inputs as given, refusing one named twice (or two names of the same file): each
    becomes a label of the data set, and labels must tell the inputs apart."""
    seen: dict[Path, str] = {}
    for p in paths:
        real = Path(p).resolve()
        if real in seen:
            raise ArgumentError("--data", f"{os.fspath(p)} and {seen[real]} are the same input")
        seen[real] = os.fspath(p)
    return list(seen.values())


def describe_inputs(paths: Sequence[str | os.PathLike]) -> dict[str, dict[str, Any]]:
    """``{input path: {experiment, is_simulation, missing_collections}}`` from each input's metadata
    (None where the metadata does not say; no collections missing where it lists none)."""
    out = {}
    for p in paths:
        source = open_events(p)
        try:
            meta = source.metadata
        finally:
            source.close()
        out[os.fspath(p)] = {
            "experiment": meta.get("experiment"),
            "is_simulation": meta.get("is_simulation"),
            "missing_collections": list(meta.get("missing_collections", [])),
        }
    return out


def inputs_text(inputs: Mapping[str, Mapping[str, Any]]) -> str:
    """One sentence naming the inputs that lack collections or hold collision data ('' if none)."""
    skims = [
        f"`{name}`: {', '.join(i['missing_collections'])}" for name, i in inputs.items() if i["missing_collections"]
    ]
    data = [f"`{name}`" for name, i in inputs.items() if i.get("is_simulation") == 0]
    parts = []
    if skims:
        parts.append(
            "Collections missing from the inputs (empty in every event of that file): " + "; ".join(skims) + "."
        )
    if data:
        parts.append("Collision data (not simulation): " + ", ".join(data) + ".")
    return " ".join(parts)


def write_inputs(directory: Path, inputs: Mapping[str, Mapping[str, Any]]) -> None:
    write_json(Path(directory) / INPUTS_FILE, dict(inputs))


def layers_of(path: str | os.PathLike) -> tuple[str, ...]:
    """The layers (``common``, ``atlas``, ``truth``, ...) a PCDF directory or HDF5 file holds."""
    source = open_events(path)
    try:
        return tuple(source.layout.layers if isinstance(source, PCDFSource) else source.read(0, 0).layers)
    finally:
        source.close()


def export_events(
    paths: Mapping[str, Sequence[str | os.PathLike]],
    out: str | os.PathLike,
    *,
    types: Sequence[str] = schema.OBJECT_TYPES,
    layers: Sequence[str] | None = None,
    sub_groups: Sequence[str] = (),
    step: int = 10_000,
    rows_per_shard: int = ROWS_PER_SHARD,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Export events ({split: PCDF dirs or HDF5 files}) as Parquet shards, one row per event with a
    list per object type (the rows of :func:`treasure_hf.load_pcdf`), plus the dataset card. An
    existing ``out`` is replaced only if ``treasure export`` wrote it, or with ``overwrite``."""
    from .cards import dataset_card

    positive("step", step)
    inputs = check_unique_inputs([p for ps in paths.values() for p in ps])
    check_destination(out, "export", inputs=inputs, overwrite=overwrite)
    if layers is None:
        layers = layers_of(next(p for ps in paths.values() for p in ps))
    target = arrow_schema(types, layers, sub_groups)
    described = describe_inputs(inputs)
    with ParquetShardWriter(
        out, hf_schema(target), rows_per_shard=rows_per_shard, producer="export", inputs=inputs, overwrite=overwrite
    ) as writer:
        write_inputs(writer.tmp, described)
        for split, ps in paths.items():
            writer.add_split(split)
            for p in ps:
                src = open_events(p)
                try:
                    bar = tqdm(total=src.n_events, unit="ev", desc=f"export {Path(p).name}", disable=not progress)
                    for lo, hi in src.ranges(step):
                        ragged = src.read_ragged(lo, hi)
                        writer.write(split, events_to_arrow(ragged, types, layers, sub_groups, first_event=lo))
                        bar.update(hi - lo)
                    bar.close()
                finally:
                    src.close()

        def card(w: Any) -> str:
            return dataset_card(
                pretty_name=f"treasure-hf events: {', '.join(Path(p).name for ps in paths.values() for p in ps)}",
                description=(
                    "Collider events in the treasure-hf common format, one row per event, one list of "
                    "objects per type (descending pT). " + inputs_text(described)
                ).strip(),
                splits=w.rows,
                columns=describe_columns(target, event_column_docs(types)),
                sources=[os.fspath(p) for ps in paths.values() for p in ps],
                repo_or_path=os.fspath(out),
                tags=["physics", "collider", "treasure-hf"],
                dataset_info=w.dataset_info(),
                provenance={"inputs": described},
            )

        return writer.close(card)
