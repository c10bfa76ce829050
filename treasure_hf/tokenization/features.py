"""Per-object feature preprocessing, read from the schema registry.

Each field's ``transform`` (see ``schema.TRANSFORMS``) says how it becomes network input:
``log`` -> log(x), ``log1p``/``count`` -> log(1 + x), ``angle`` -> (sin, cos), ``flag`` and
``score`` -> as is, ``linear``/``category`` -> as is; then every column but angles, flags and
scores is standardised with a mean and standard deviation fitted on the training objects and
saved with the tokenizer. :meth:`FeatureScaler.inverse` undoes all of it (integers are rounded),
giving physical values again (GeV, rad).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..data import schema
from ..errors import InputError

_UNSCALED = ("angle", "flag", "score")
LOG_FLOOR = 1e-3
"""Values of ``log`` fields are clipped to at least this (GeV) before the log."""


def field_names(object_type: str, layers: tuple[str, ...] = ("common",)) -> list[str]:
    """``layer/field`` names a tokenizer of ``object_type`` encodes, in registry order."""
    return [f"{layer}/{f.name}" for layer in layers for f in schema.fields(layer, object_type)]


def _field(object_type: str, name: str) -> schema.Field:
    layer, fname = name.split("/")
    return schema.field_of(schema.key(layer, object_type, fname))


def columns(object_type: str, names: list[str]) -> list[str]:
    """Network input columns: one per field, two (``:sin``, ``:cos``) per angle."""
    out = []
    for name in names:
        if _field(object_type, name).transform == "angle":
            out += [f"{name}:sin", f"{name}:cos"]
        else:
            out.append(name)
    return out


@dataclass
class FeatureScaler:
    """Maps an object type's physical fields to standardised network columns and back."""

    object_type: str
    fields: list[str]
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)

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
            f = _field(self.object_type, name)
            if name not in values:
                raise InputError(None, schema.key(name.split("/")[0], self.object_type, f.name),
                                 f"the {self.object_type} tokenizer needs this field and the data lack it")
            x = np.asarray(values[name], np.float64)
            if not np.all(np.isfinite(x)):
                bad = int(np.count_nonzero(~np.isfinite(x)))
                raise InputError(None, schema.key(name.split("/")[0], self.object_type, f.name),
                                 f"{bad} non-finite values (NaN or inf) in real objects")
            if f.transform == "log":
                cols.append(np.log(np.maximum(x, LOG_FLOOR)))
            elif f.transform in ("log1p", "count"):
                cols.append(np.log1p(np.maximum(x, 0.0)))
            elif f.transform == "angle":
                cols += [np.sin(x), np.cos(x)]
            else:
                cols.append(x)
        return np.stack(cols, axis=-1) if cols else np.zeros((0, 0))

    def column_transforms(self) -> list[str]:
        """The registry transform behind each network column."""
        out = []
        for name in self.fields:
            t = _field(self.object_type, name).transform
            out += [t] * (2 if t == "angle" else 1)
        return out

    def _scaled_columns(self) -> np.ndarray:
        return np.asarray([t not in _UNSCALED for t in self.column_transforms()], bool)

    def fit(self, values: Mapping[str, np.ndarray]) -> "FeatureScaler":
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
        return {"object_type": self.object_type, "fields": list(self.fields), "mean": list(self.mean),
                "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FeatureScaler":
        return cls(d["object_type"], list(d["fields"]), list(d["mean"]), list(d["std"]))
