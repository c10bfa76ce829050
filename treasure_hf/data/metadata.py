"""The ``/metadata`` attributes: defaults from the registry, encoding to HDF5 attributes and
Parquet key-value metadata, and the completeness check."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .. import provenance
from . import schema


def make_metadata(
    experiment: str,
    input_file: str,
    *,
    layers: tuple[str, ...] = (),
    max_objects: Mapping[str, int] | None = None,
    pt_cuts: Mapping[str, float] | None = None,
    met_definition: str = "",
    common_iso_source: Mapping[str, str] | None = None,
    missing_fields: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Every required attribute, filled from the registry where the caller gives nothing."""
    if experiment not in schema.EXPERIMENTS:
        raise ValueError(f"experiment must be one of {sorted(schema.EXPERIMENTS)}, not {experiment!r}")
    unknown = set(extra) - set(schema.METADATA)
    if unknown:
        raise ValueError(f"metadata attributes not declared in the registry: {sorted(unknown)}")
    iso = schema.ISOLATION
    meta: dict[str, Any] = {
        "experiment": experiment,
        "format_version": schema.FORMAT_VERSION,
        "input_file": input_file,
        "n_events": 0,
        "git_hash": provenance.git_hash(),
        "pt_cuts": {**schema.default_pt_cuts(), **(pt_cuts or {})},
        "max_objects": {**schema.default_max_objects(), **(max_objects or {})},
        "common_iso_cone": iso.cone,
        "common_iso_pt_floor_gev": iso.pt_floor_gev,
        "common_iso_z0sintheta_cut_mm": iso.z0sintheta_cut_mm,
        "creator": provenance.creator(),
        "met_definition": met_definition,
        "common_iso_source": dict(common_iso_source or {}),
        "missing_fields": list(missing_fields or []),
        "layers": list(layers),
    }
    meta.update(extra)
    return meta


def encode(meta: Mapping[str, Any]) -> dict[str, str | int | float]:
    """Attribute values for HDF5: JSON kinds become JSON strings."""
    out: dict[str, str | int | float] = {}
    for name, value in meta.items():
        kind = schema.METADATA[name].kind if name in schema.METADATA else "json"
        if kind == "json":
            out[name] = json.dumps(value, sort_keys=True)
        elif kind == "int":
            out[name] = int(value)
        elif kind == "float":
            out[name] = float(value)
        else:
            out[name] = str(value)
    return out


def decode(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`encode`; raises ``ValueError`` naming the attribute on bad JSON."""
    out: dict[str, Any] = {}
    for name, value in attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        kind = schema.METADATA[name].kind if name in schema.METADATA else "json"
        if kind == "json":
            try:
                out[name] = json.loads(value) if isinstance(value, str) else value
            except json.JSONDecodeError as exc:
                raise ValueError(f"metadata attribute {name!r} is not valid JSON: {exc}") from None
        elif kind == "int":
            out[name] = int(value)
        elif kind == "float":
            out[name] = float(value)
        else:
            out[name] = str(value)
    return out


def to_json(meta: Mapping[str, Any]) -> str:
    return json.dumps(dict(meta), sort_keys=True)


def problems(meta: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(attribute, message)`` for each missing or malformed required attribute."""
    out = []
    for name, attr in schema.METADATA.items():
        if attr.required and name not in meta:
            out.append((f"metadata/{name}", "required metadata attribute is missing"))
    version = meta.get("format_version")
    if version is not None and version != schema.FORMAT_VERSION:
        out.append(("metadata/format_version", f"is {version!r}, this reader knows {schema.FORMAT_VERSION!r}"))
    experiment = meta.get("experiment")
    if experiment is not None and experiment not in schema.EXPERIMENTS:
        out.append(("metadata/experiment", f"is {experiment!r}, expected one of {sorted(schema.EXPERIMENTS)}"))
    for name in ("pt_cuts", "max_objects", "common_iso_source"):
        if name in meta and not isinstance(meta[name], dict):
            out.append((f"metadata/{name}", "must be a JSON object mapping a type to its value"))
    if "is_simulation" in meta and meta["is_simulation"] not in (0, 1):
        out.append(("metadata/is_simulation", f"is {meta['is_simulation']!r}: must be 0 (data) or 1 (simulation)"))
    for name in ("missing_fields", "layers", "missing_collections"):
        if name in meta and not isinstance(meta[name], list):
            out.append((f"metadata/{name}", "must be a JSON list"))
    layers = meta.get("layers")
    if isinstance(layers, list):
        for layer in layers:
            if layer not in schema.LAYERS or layer == "common":
                out.append(("metadata/layers", f"names unknown layer {layer!r}"))
    return out
