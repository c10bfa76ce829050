"""NanoAOD files rewritten with uproot, for tests that need a real file with one thing changed:
a branch renamed, a collection dropped, a value broken."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import awkward as ak
import uproot

Collections = dict[str, dict[str, ak.Array]]
"""``{"Muon": {"pt": ..., "eta": ...}, ...}`` (jagged, one counter ``nMuon`` each); flat
branches under the key ``""``."""


def read_nanoaod(path: str | Path, tree: str = "Events") -> Collections:
    """Every branch of a NanoAOD tree, grouped by the counter it hangs on."""
    t = uproot.open(path)[tree]
    out: Collections = {"": {}}
    counters = {b.count_branch.name for b in t.branches if b.count_branch is not None}
    for b in t.branches:
        if b.count_branch is not None:
            prefix = b.count_branch.name[1:]
            out.setdefault(prefix, {})[b.name[len(prefix) + 1:]] = b.array()
        elif b.name not in counters:
            out[""][b.name] = b.array()
    return out


def write_nanoaod(path: str | Path, collections: Collections, tree: str = "Events") -> Path:
    """Write ``collections`` as NanoAOD writes them: ``nX`` counters and ``X_field`` branches."""
    arrays = dict(collections.get("", {}))
    for prefix, fields in collections.items():
        if prefix and fields:
            arrays[prefix] = ak.zip(fields, depth_limit=2)
    types = {k: (v.type.content if k in collections and k else v.type.content) for k, v in arrays.items()}
    with uproot.recreate(path) as f:
        f.mktree(tree, types, counter_name=lambda c: "n" + c, field_name=lambda outer, inner: f"{outer}_{inner}")
        f[tree].extend(arrays)
    return Path(path)


def rewrite_nanoaod(src: str | Path, dst: str | Path, edit: Callable[[Collections], None]) -> Path:
    """A copy of ``src`` with ``edit`` applied to its branches (in place on the dict)."""
    collections = read_nanoaod(src)
    edit(collections)
    return write_nanoaod(dst, collections)
