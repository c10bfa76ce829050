"""Per-object feature preprocessing, read from the schema registry.

Each field's ``transform`` (see ``schema.TRANSFORMS``) says how it becomes network input:
``log`` -> log(x), ``log1p``/``count`` -> log(1 + x), ``angle`` -> (sin, cos), ``flag`` and
``score`` -> as is, ``linear``/``category`` -> as is; then every column but angles, flags and
scores is standardised with a mean and standard deviation fitted on the training objects and
saved with the tokenizer. :meth:`FeatureScaler.inverse` undoes all of it (integers are rounded),
giving physical values again (GeV, rad).

Sub-objects (jet constituents, track hits) are described relative to their parent object, as
declared once in :data:`RELATIVE_FIELDS`: a constituent's pT becomes pT / pT(jet) (then ``log``),
its eta eta - eta(jet) and its phi the wrapped phi - phi(jet) (standardised, not sin/cos: it is
small and centred on 0). Their names are ``rel/FIELD`` (``rel/pt``, ``rel/eta``, ``rel/phi``);
:func:`to_relative` and :func:`from_relative` convert, exactly inverse up to float rounding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data import schema
from ..errors import InputError
from ..kinematics import wrap_angle

_UNSCALED = ("angle", "flag", "score")
LOG_FLOOR = 1e-3
"""Values of ``log`` fields are clipped to at least this (GeV) before the log."""


RELATIVE = "rel"
"""Pseudo-layer of the fields of a sub-object that are taken relative to its parent."""
REL_LOG_FLOOR = 1e-6
"""Ratios of ``log`` relative fields (pT / parent pT) are clipped to at least this before the log."""


@dataclass(frozen=True)
class RelativeField:
    """A sub-object field expressed relative to the same field of its parent object.

    ``relation``: ``ratio`` (x / x_parent), ``difference`` (x - x_parent) or ``angle`` (x - x_parent
    wrapped into [-pi, pi)); ``transform`` is the registry transform of the relative value."""

    name: str
    relation: str
    transform: str
    doc: str = ""

    def as_field(self, object_type: str) -> schema.Field:
        base = schema.field_of(schema.key("common", object_type, self.name))
        unit = "" if self.relation == "ratio" else base.unit
        return schema.Field(self.name, "float32", unit, base.feature_group, self.transform, self.doc)


RELATIVE_FIELDS: dict[str, tuple[RelativeField, ...]] = {
    "constituents": (
        RelativeField("pt", "ratio", "log", "pT / pT(jet)"),
        RelativeField("eta", "difference", "linear", "eta - eta(jet): eta_rel"),
        RelativeField("phi", "angle", "linear", "phi - phi(jet) wrapped into [-pi, pi): phi_rel, rad"),
    ),
    "hits": (
        RelativeField("eta", "difference", "linear", "eta - eta(track): eta_rel"),
        RelativeField("phi", "angle", "linear", "phi - phi(track) wrapped into [-pi, pi): phi_rel, rad"),
    ),
}
"""Per sub-object type (``schema.SUB_OBJECT_TYPES``), the fields taken relative to the parent
(``schema.GROUPS[type].parent``); the sub-object's other common fields are used as they are."""


def field_names(object_type: str, layers: tuple[str, ...] = ("common",)) -> list[str]:
    """``layer/field`` names a tokenizer of ``object_type`` encodes, in registry order; for a
    sub-object type the fields of :data:`RELATIVE_FIELDS` become ``rel/FIELD``."""
    relative = {r.name for r in RELATIVE_FIELDS.get(object_type, ())}
    return [
        f"{RELATIVE}/{f.name}" if layer == "common" and f.name in relative else f"{layer}/{f.name}"
        for layer in layers
        for f in schema.fields(layer, object_type)
    ]


def parent_field_names(object_type: str) -> list[str]:
    """Common fields of the parent that :func:`to_relative` needs (``pt``, ``eta``, ``phi`` ...)."""
    return [r.name for r in RELATIVE_FIELDS.get(object_type, ())]


def to_relative(
    object_type: str, values: Mapping[str, np.ndarray], parent: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Sub-object values ``{common/FIELD: array}`` and their parents' ``{FIELD: array}`` (same
    shape, broadcast) -> ``{rel/FIELD or common/FIELD: array}`` as :func:`field_names` lists."""
    out = {}
    rel = {r.name: r for r in RELATIVE_FIELDS.get(object_type, ())}
    for name in field_names(object_type):
        layer, fname = name.split("/")
        x = values[f"common/{fname}"] if layer == RELATIVE else values[name]
        if layer == RELATIVE:
            x, p = np.asarray(x, np.float64), np.asarray(parent[fname], np.float64)
            r = rel[fname]
            if r.relation == "ratio":
                x = x / np.where(p != 0, p, 1.0)
            elif r.relation == "difference":
                x = x - p
            else:
                x = wrap_angle(x - p)
        out[name] = x
    return out


def from_relative(
    object_type: str, values: Mapping[str, np.ndarray], parent: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Inverse of :func:`to_relative`: ``{common/FIELD: array}`` physical values (GeV, rad, mm)."""
    out = {}
    rel = {r.name: r for r in RELATIVE_FIELDS.get(object_type, ())}
    for name, x in values.items():
        layer, fname = name.split("/")
        if layer == RELATIVE:
            dtype = schema.field_of(schema.key("common", object_type, fname)).np_dtype
            x, p = np.asarray(x, np.float64), np.asarray(parent[fname], np.float64)
            r = rel[fname]
            if r.relation == "ratio":
                x = x * p
            elif r.relation == "difference":
                x = x + p
            else:
                x = wrap_angle(x + p)
            out[f"common/{fname}"] = x.astype(dtype)
        else:
            out[name] = x
    return out


def sub_object_values(
    arrays: Mapping[str, np.ndarray], object_type: str, parent_width: int | None = None, width: int | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The :func:`field_names` values of the real sub-objects of real parents in padded event arrays.

    ``arrays``: ``layer/group/field`` -> padded arrays (``common/constituents/pt`` of shape
    (n_events, max_jets, 50), the parent's ``common/jets/*`` of shape (n_events, max_jets));
    ``parent_width``/``width`` cut the parent and sub-object axes. Returns ``{name: (n_real,)}`` and
    the mask (n_events, parents, sub-objects) of the real ones. A missing key raises
    :class:`InputError` naming it."""
    parent = schema.GROUPS[object_type].parent

    def get(k: str) -> np.ndarray:
        if k not in arrays:
            raise InputError(None, k, f"needed for the {object_type} of the {parent} (the data lack it)")
        return np.asarray(arrays[k])

    parent_mask = get(schema.key("common", parent, schema.MASK)).astype(bool)[:, :parent_width]
    mask = get(schema.key("common", object_type, schema.MASK)).astype(bool)[:, : parent_mask.shape[1], :width]
    mask = mask & parent_mask[:, : mask.shape[1], None]
    p = mask.shape[1]
    values = {}
    for name in field_names(object_type):
        values[_key(object_type, name)] = get(_key(object_type, name))[:, :p, : mask.shape[2]][mask]
    parents = {
        f: np.broadcast_to(get(schema.key("common", parent, f))[:, :p, None], mask.shape)[mask]
        for f in parent_field_names(object_type)
    }
    relative = to_relative(object_type, {f"common/{k.split('/')[2]}": v for k, v in values.items()}, parents)
    return relative, mask


def field_spec(object_type: str, name: str) -> schema.Field:
    """The registry :class:`~treasure_hf.data.schema.Field` of a ``layer/field`` name of
    ``object_type``; for ``rel/FIELD`` the relative field (its unit and transform)."""
    layer, fname = name.split("/")
    if layer == RELATIVE:
        for r in RELATIVE_FIELDS.get(object_type, ()):
            if r.name == fname:
                return r.as_field(object_type)
        raise KeyError(f"{name!r}: {object_type} has no field taken relative to its parent")
    return schema.field_of(schema.key(layer, object_type, fname))


_field = field_spec


def relative_field(object_type: str, name: str) -> RelativeField | None:
    """The :class:`RelativeField` behind ``rel/FIELD``, None for other names."""
    layer, fname = name.split("/")
    if layer != RELATIVE:
        return None
    return next((r for r in RELATIVE_FIELDS.get(object_type, ()) if r.name == fname), None)


def feature_group_columns(object_type: str, names: list[str]) -> dict[str, list[int]]:
    """``{feature_group: [column indices]}`` of the network columns of ``names`` (registry
    ``feature_group`` of each field; both columns of an angle), groups in registry order."""
    out: dict[str, list[int]] = {}
    for i, col in enumerate(columns(object_type, names)):
        out.setdefault(_field(object_type, col.split(":")[0]).feature_group, []).append(i)
    return {g: out[g] for g in schema.FEATURE_GROUPS if g in out}


def columns(object_type: str, names: list[str]) -> list[str]:
    """Network input columns: one per field, two (``:sin``, ``:cos``) per angle."""
    out = []
    for name in names:
        if _field(object_type, name).transform == "angle":
            out += [f"{name}:sin", f"{name}:cos"]
        else:
            out.append(name)
    return out


def _key(object_type: str, name: str) -> str:
    """The data key behind a field name (``rel/pt`` of constituents -> ``common/constituents/pt``)."""
    layer, fname = name.split("/")
    return schema.key("common" if layer == RELATIVE else layer, object_type, fname)


@dataclass
class FeatureScaler:
    """Maps an object type's physical fields to standardised network columns and back."""

    object_type: str
    fields: list[str]
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        """A fitted scaler (``mean``/``std`` given) must have one finite value per column and
        positive scales: a zero or NaN scale would map every object to the same codes."""
        if not self.mean and not self.std:
            return
        n = self.n_columns
        if len(self.mean) != n or len(self.std) != n:
            raise ValueError(
                f"{self.object_type} scaler: feature_mean and feature_std need {n} values (one per "
                f"column {self.columns}), got {len(self.mean)} and {len(self.std)}"
            )
        for c, m, s in zip(self.columns, self.mean, self.std):
            if not (isinstance(m, (int, float)) and math.isfinite(m)):
                raise ValueError(f"{self.object_type} scaler: feature_mean of {c} is {m!r}, not a finite number")
            if not (isinstance(s, (int, float)) and math.isfinite(s) and s > 0):
                raise ValueError(
                    f"{self.object_type} scaler: feature_std of {c} is {s!r}; scales must be finite and positive"
                )

    @property
    def columns(self) -> list[str]:
        return columns(self.object_type, self.fields)

    @property
    def n_columns(self) -> int:
        return len(self.columns)

    def _raw(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """(n_objects, n_columns) before standardisation."""
        cols = []
        for name in self.fields:
            if name not in values:
                raise InputError(
                    None,
                    _key(self.object_type, name),
                    f"the {self.object_type} tokenizer needs this field and the data lack it",
                )
            x = np.asarray(values[name], np.float64)
            if not np.all(np.isfinite(x)):
                bad = int(np.count_nonzero(~np.isfinite(x)))
                raise InputError(
                    None, _key(self.object_type, name), f"{bad} non-finite values (NaN or inf) in real objects"
                )
            cols += self._columns_of(name, x, np.log, np.log1p, np.sin, np.cos, np.maximum)
        return np.stack(cols, axis=-1) if cols else np.zeros((0, 0))

    def _columns_of(self, name: str, x: Any, log, log1p, sin, cos, maximum) -> list:
        """The network columns of one field: the registry transform, written once for numpy and
        torch (the functions are the array library's)."""
        f = _field(self.object_type, name)
        if f.transform == "log":
            return [log(maximum(x, REL_LOG_FLOOR if name.startswith(RELATIVE + "/") else LOG_FLOOR))]
        if f.transform in ("log1p", "count"):
            return [log1p(maximum(x, 0.0))]
        if f.transform == "angle":
            return [sin(x), cos(x)]
        return [x]

    def transform_torch(self, values: Mapping[str, Any]) -> Any:
        """:meth:`transform` in torch ops, for graphs (ONNX): ``{layer/field: (n,) float64 tensor}``
        -> ``(n, n_columns)`` float32."""
        import torch

        def maximum(x, floor):
            return torch.clamp(x, min=floor)

        cols = []
        for name in self.fields:
            cols += self._columns_of(
                name, values[name].to(torch.float64), torch.log, torch.log1p, torch.sin, torch.cos, maximum
            )
        raw = torch.stack(cols, dim=-1)
        mean = torch.tensor(self.mean, dtype=torch.float64)
        std = torch.tensor(self.std, dtype=torch.float64)
        return ((raw - mean) / std).to(torch.float32)

    def column_transforms(self) -> list[str]:
        """The registry transform behind each network column."""
        out = []
        for name in self.fields:
            t = _field(self.object_type, name).transform
            out += [t] * (2 if t == "angle" else 1)
        return out

    def _scaled_columns(self) -> np.ndarray:
        return np.asarray([t not in _UNSCALED for t in self.column_transforms()], bool)

    def fit(self, values: Mapping[str, np.ndarray]) -> FeatureScaler:
        raw = self._raw(values)
        scaled = self._scaled_columns()
        mean = np.where(scaled, raw.mean(0) if len(raw) else 0.0, 0.0)
        std = np.where(scaled, raw.std(0) if len(raw) else 1.0, 1.0)
        std = np.where(std > 1e-6, std, 1.0)
        self.mean, self.std = mean.tolist(), std.tolist()
        return self

    def transform(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """``{layer/field: (n,)}`` physical values -> ``(n, n_columns)`` float32 network input."""
        raw = self._raw(values)
        return ((raw - np.asarray(self.mean)) / np.asarray(self.std)).astype(np.float32)

    def inverse(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """``(n, n_columns)`` network output -> ``{layer/field: (n,)}`` physical values."""
        raw = np.asarray(x, np.float64) * np.asarray(self.std) + np.asarray(self.mean)
        out: dict[str, np.ndarray] = {}
        i = 0
        for name in self.fields:
            f = _field(self.object_type, name)
            if f.transform == "angle":
                v = np.arctan2(raw[:, i], raw[:, i + 1])
                i += 2
            else:
                v = raw[:, i]
                i += 1
                if f.transform == "log":
                    v = np.exp(v)
                elif f.transform in ("log1p", "count"):
                    v = np.expm1(np.maximum(v, 0.0))
                elif f.transform in ("flag", "score"):
                    v = np.clip(v, 0.0, 1.0)
            if f.np_dtype.kind in "iub" or f.transform in ("flag", "category", "count") and f.np_dtype.kind != "f":
                v = np.rint(v)
            out[name] = v.astype(f.np_dtype)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "object_type": self.object_type,
            "fields": list(self.fields),
            "mean": list(self.mean),
            "std": list(self.std),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureScaler:
        return cls(d["object_type"], list(d["fields"]), list(d["mean"]), list(d["std"]))
