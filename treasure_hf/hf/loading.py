"""``load_pcdf``: PCDF directories (or common HDF5 files) as a ``datasets`` data set, one row per
event with a list of objects per type."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from ..data import schema
from ..errors import FormatError


def _paths(path: Any) -> dict[str, list[str]]:
    if isinstance(path, Mapping):
        return {
            str(split): [os.fspath(p) for p in ([ps] if isinstance(ps, (str, os.PathLike)) else ps)]
            for split, ps in path.items()
        }
    if isinstance(path, (str, os.PathLike)):
        return {"train": [os.fspath(path)]}
    return {"train": [os.fspath(p) for p in path]}


def load_pcdf(
    path: str | os.PathLike | Sequence[str | os.PathLike] | Mapping[str, Any],
    *,
    split: str | None = None,
    types: Sequence[str] | None = None,
    layers: Sequence[str] | None = None,
    sub_groups: Sequence[str] = (),
    streaming: bool = False,
    cache_dir: str | os.PathLike | None = None,
    step: int | None = None,
    num_proc: int | None = None,
):
    """Load events as a ``datasets`` data set: one row per event, a list of structs per object type.

    ``path``: a PCDF directory or common HDF5 file, a list of them (one ``train`` split), or a
    mapping ``{split: paths}``. ``types``: object types to include (default all), ``layers``:
    layers besides ``common`` (default those of the first input), ``sub_groups``: sub-objects
    nested in their parent (``("constituents",)``). Returns a ``DatasetDict`` (``split=None``),
    a ``Dataset``, or with ``streaming=True`` the ``IterableDataset(Dict)`` read part by part.
    """
    from . import pcdf_builder as module

    paths = _paths(path)
    for ps in paths.values():
        for p in ps:
            if not os.path.exists(p):
                raise FormatError(p, None, "no such PCDF directory or HDF5 file")
    types = tuple(types or schema.OBJECT_TYPES)
    unknown = [t for t in types if t not in schema.OBJECT_TYPES]
    if unknown:
        raise FormatError(None, unknown[0], f"is not an object type; choose from {schema.OBJECT_TYPES}")
    kwargs: dict[str, Any] = {"paths": paths, "types": types, "sub_groups": tuple(sub_groups)}
    if layers is not None:
        kwargs["layers"] = tuple(layers)
    if step:
        kwargs["step"] = int(step)
    builder = module.PCDFEvents(
        cache_dir=os.fspath(cache_dir) if cache_dir else None,
        hash=module.fingerprint(paths),
        dataset_name="pcdf_events",
        **kwargs,
    )
    if split is not None and split not in paths:
        raise FormatError(None, split, f"no such split; the data have {sorted(paths)}")
    if streaming:
        return builder.as_streaming_dataset(split=split)
    builder.download_and_prepare(num_proc=num_proc)
    return builder.as_dataset(split=split)
