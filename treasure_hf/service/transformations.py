"""The pre-determined transformations, each named after the CLI verb it runs and calling the
very library function that verb calls (one path per job): its result equals the verb's output
bit for bit. Parameters are pydantic models (their JSON schemas are served) whose defaults
are the verb's defaults; a parameter naming a tokenizer or a model is resolved in the catalog.

Adding a transformation is one :func:`register` call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..data import schema
from ..data.io import DEFAULT_STEP
from ..data.pcdf import EVENTS_PER_PART
from ..hf.export import ROWS_PER_SHARD
from ..hf.tokenize import DEFAULT_SPLIT, parse_split

ObjectType = Literal[schema.OBJECT_TYPES]  # type: ignore[valid-type]
SubObjectType = Literal[schema.SUB_OBJECT_TYPES]  # type: ignore[valid-type]
WidthType = Literal[(*schema.OBJECT_TYPES, *schema.SUB_OBJECT_TYPES)]  # type: ignore[valid-type]
SPLIT_NAME = r"^[A-Za-z][A-Za-z0-9_]{0,31}$"
MAX_STEP = 1_000_000


class Params(BaseModel):
    """Base of every parameter model: unknown parameters are refused."""

    model_config = ConfigDict(extra="forbid")


def _step(default: int) -> Any:
    return Field(default, gt=0, le=MAX_STEP, description="events per chunk in memory")


class PcdfToH5Params(Params):
    max_objects: dict[WidthType, int] = Field({}, description="padding size per object type")
    pt_cuts: dict[ObjectType, float] = Field({}, description="minimum pT per object type [GeV]")
    step: int = _step(DEFAULT_STEP)

    @field_validator("max_objects")
    @classmethod
    def _widths(cls, v: dict[str, int]) -> dict[str, int]:
        bad = {k: n for k, n in v.items() if not 0 < n <= 100_000}
        if bad:
            raise ValueError(f"padding sizes must lie in 1..100000, got {bad}")
        return v

    @field_validator("pt_cuts")
    @classmethod
    def _cuts(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: c for k, c in v.items() if not 0 <= c < float("inf")}
        if bad:
            raise ValueError(f"pT cuts must be finite numbers of GeV >= 0, got {bad}")
        return v


class H5ToPcdfParams(Params):
    events_per_part: int = Field(EVENTS_PER_PART, gt=0, le=10_000_000, description="events per PCDF part")
    step: int = _step(DEFAULT_STEP)


class TokenizeParams(Params):
    tokenizer: str = Field(description="name of a tokenizer in ROOT/tokenizers")
    split: dict[str, float] = Field(
        dict(DEFAULT_SPLIT), description="split name -> fraction (adding up to 1), by a seeded hash of the event"
    )
    label: str | None = Field(
        None, max_length=128, description="class of every event (default: truth/event/process_id)"
    )
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seed of the split hash")
    max_length: int | None = Field(None, gt=0, le=1_000_000, description="truncate longer events")
    skip_types: list[ObjectType] = Field([], description="object types to leave out")
    rows_per_shard: int = Field(250_000, gt=0, le=10_000_000)
    step: int = _step(10_000)

    @field_validator("split")
    @classmethod
    def _split(cls, v: dict[str, float]) -> dict[str, float]:
        import re

        bad = [s for s in v if not re.match(SPLIT_NAME, s)]
        if bad:
            raise ValueError(f"split names must match {SPLIT_NAME}, got {bad}")
        return parse_split(v)


class ExportParams(Params):
    types: list[ObjectType] | None = Field(None, description="object types (default: all)")
    sub_objects: list[SubObjectType] = Field([], description="sub-objects nested in their parents")
    split: str = Field("train", pattern=SPLIT_NAME, description="name of the one split")
    rows_per_shard: int = Field(ROWS_PER_SHARD, gt=0, le=10_000_000)
    step: int = _step(10_000)


def _presets() -> tuple[str, ...]:
    from ..benchmark.select import PRESETS

    return tuple(PRESETS)


class SelectParams(Params):
    preset: Literal[_presets()] = Field("4l", description="registered selection")  # type: ignore[valid-type]
    step: int = _step(DEFAULT_STEP)


class PredictParams(Params):
    model: str = Field(description="name of a classifier in ROOT/models (saved by treasure finetune)")
    batch_size: int = Field(256, gt=0, le=65_536, description="events per forward pass")
    step: int = _step(10_000)


# --- what each runs (on a Dask worker; module-level, so that workers import them by name) ------
Resources = Mapping[str, Path]


def _run_pcdf_to_h5(src: Path, out: Path, p: PcdfToH5Params, res: Resources) -> None:
    from ..data.io import pcdf_to_h5

    pcdf_to_h5(src, out, step=p.step, max_objects=dict(p.max_objects), pt_cuts=dict(p.pt_cuts), progress=False)


def _run_h5_to_pcdf(src: Path, out: Path, p: H5ToPcdfParams, res: Resources) -> None:
    from ..data.io import h5_to_pcdf

    h5_to_pcdf(src, out, step=p.step, events_per_part=p.events_per_part, progress=False)


def _run_tokenize(src: Path, out: Path, p: TokenizeParams, res: Resources) -> None:
    from ..hf.tokenize import tokenize_to_dataset

    tokenize_to_dataset(
        str(res["tokenizer"]),
        [str(src)],
        out,
        split=dict(p.split),
        labels={str(src): p.label} if p.label else None,
        seed=p.seed,
        step=p.step,
        max_length=p.max_length,
        rows_per_shard=p.rows_per_shard,
        skip_types=tuple(p.skip_types),
        progress=False,
    )


def _run_export(src: Path, out: Path, p: ExportParams, res: Resources) -> None:
    from ..hf.export import export_events

    kwargs = {"types": tuple(p.types)} if p.types else {}
    export_events(
        {p.split: [str(src)]},
        out,
        sub_groups=tuple(p.sub_objects),
        step=p.step,
        rows_per_shard=p.rows_per_shard,
        progress=False,
        **kwargs,
    )


def _run_select(src: Path, out: Path, p: SelectParams, res: Resources) -> None:
    from ..benchmark.select import select_events

    select_events(str(src), out, preset=p.preset, step=p.step, progress=False)


def _run_predict(src: Path, out: Path, p: PredictParams, res: Resources) -> None:
    from ..inference.predict import PredictArguments, predict

    predict(
        PredictArguments(
            model=str(res["model"]),
            inputs=[str(src)],
            out=str(out),
            format="parquet",
            batch_size=p.batch_size,
            step=p.step,
            progress=False,
        )
    )


def _parquet_file(input_kind: str) -> str:
    return "result.parquet"


def _h5_file(input_kind: str) -> str:
    return "result.h5"


def _directory(input_kind: str) -> str:
    return "result"


def _same_format(input_kind: str) -> str:
    return "result.h5" if input_kind == "h5" else "result"


@dataclass(frozen=True)
class Transformation:
    name: str
    """The CLI verb it runs."""
    description: str
    inputs: tuple[str, ...]
    """Kinds of data set it takes (:data:`treasure_hf.service.catalog.KINDS`)."""
    params: type[Params]
    run: Callable[[Path, Path, Any, Resources], None]
    result: Callable[[str], str]
    """Name of the result in the job's folder, given the input's kind (a file, or a directory)."""
    resources: Mapping[str, str] = field(default_factory=dict)
    """Parameter -> catalog folder (``tokenizer``, ``model``) its value names."""

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "inputs": list(self.inputs),
            "resources": dict(self.resources),
            "params": self.params.model_json_schema(),
        }


TRANSFORMATIONS: dict[str, Transformation] = {}


def register(t: Transformation) -> Transformation:
    TRANSFORMATIONS[t.name] = t
    return t


register(
    Transformation(
        "pcdf-to-h5",
        "padded common HDF5 (one .h5 file), with max_objects and pT cuts",
        ("pcdf",),
        PcdfToH5Params,
        _run_pcdf_to_h5,
        _h5_file,
    )
)
register(
    Transformation(
        "h5-to-pcdf",
        "a PCDF directory (a manifest of Parquet parts)",
        ("h5",),
        H5ToPcdfParams,
        _run_h5_to_pcdf,
        _directory,
    )
)
register(
    Transformation(
        "tokenize",
        "tokenized with a named tokenizer: a Hugging Face data set of Parquet shards "
        "with its card (datasets.load_dataset reads it)",
        ("pcdf", "h5"),
        TokenizeParams,
        _run_tokenize,
        _directory,
        {"tokenizer": "tokenizer"},
    )
)
register(
    Transformation(
        "export",
        "events as Parquet shards, one row per event, with a dataset card",
        ("pcdf", "h5"),
        ExportParams,
        _run_export,
        _directory,
    )
)
register(
    Transformation(
        "select",
        "the events that pass a registered selection preset (4l: the H -> ZZ* -> 4l "
        "four-lepton selection), in the input's format",
        ("pcdf", "h5"),
        SelectParams,
        _run_select,
        _same_format,
    )
)
register(
    Transformation(
        "predict",
        "scores of a named classifier for every event: a Parquet table keyed by eventIndex "
        "(and run, luminosity block, event number), one score_CLASS column per class",
        ("pcdf", "h5"),
        PredictParams,
        _run_predict,
        _parquet_file,
        {"model": "model"},
    )
)
