"""Code that travels with a saved model or tokenizer, so that the folder (or its hub repo) loads
with ``trust_remote_code=True`` where treasure_hf is not installed.

- A **model** folder gets ``configuration_event_transformer.py`` and ``modeling_event_transformer.py``
  (they import nothing of treasure_hf outside their folder) and an ``auto_map`` in ``config.json``
  for ``AutoConfig``, ``AutoModel``, ``AutoModelForSequenceClassification`` and ``AutoModelForMaskedLM``.
- A **tokenizer** folder gets the modules the :class:`EventTokenizer` imports, followed from
  ``tokenization_event`` through its relative imports (the quantizers, the feature scaling, the code
  lookup, the schema registry, the event containers, the error types), flattened into one folder
  with their relative imports rewritten to siblings (``from ..data import schema`` becomes
  ``from . import schema``), and an ``auto_map`` in ``tokenizer_config.json`` for ``AutoTokenizer``.

The package's own files are the only source: each copy says where it comes from. Where treasure_hf
is imported, the same folders load its classes without ``trust_remote_code``; without
``trust_remote_code``, transformers runs none of the copied code.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import logging
import os
from pathlib import Path

from .. import __version__
from ..data.atomic import write_json
from ..errors import FormatError

logger = logging.getLogger(__name__)

PACKAGE = "treasure_hf"
TOKENIZER_MODULE = "treasure_hf.tokenization.tokenization_event"
MODEL_MODULES = (
    "treasure_hf.modeling.configuration_event_transformer",
    "treasure_hf.modeling.modeling_event_transformer",
)
MODEL_AUTO_MAP = {
    "AutoConfig": "configuration_event_transformer.EventTransformerConfig",
    "AutoModel": "modeling_event_transformer.EventTransformerModel",
    "AutoModelForSequenceClassification": "modeling_event_transformer.EventTransformerForSequenceClassification",
    "AutoModelForMaskedLM": "modeling_event_transformer.EventTransformerForMaskedEventModeling",
}
TOKENIZER_AUTO_MAP = {"AutoTokenizer": ["tokenization_event.EventTokenizer", None]}


def _source(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise FormatError(None, module, "module not found in the installed treasure_hf")
    return Path(spec.origin)


def _is_module(name: str) -> bool:
    """Whether ``name`` is a module file (not a package, not an attribute of a module)."""
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:  # a name inside a module, not a module
        return False
    return spec is not None and spec.origin is not None and not spec.origin.endswith("__init__.py")


def _relative_imports(module: str) -> list[tuple[ast.ImportFrom, str, list[tuple[str, str | None, str]]]]:
    """Each relative import of ``module``: the node, the module it reads from, and per imported
    name ``(name, asname, module it is, or '' for an attribute)``."""
    tree = ast.parse(_source(module).read_text())
    package = module.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
        target = f"{base}.{node.module}" if node.module else base
        names = [
            (a.name, a.asname, f"{target}.{a.name}" if _is_module(f"{target}.{a.name}") else "") for a in node.names
        ]
        out.append((node, target, names))
    return out


def module_closure(entry: str) -> list[str]:
    """``entry`` and every module of treasure_hf it imports, directly or not, by relative imports."""
    seen, todo = [], [entry]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.append(module)
        for _, target, names in _relative_imports(module):
            if _is_module(target):
                todo.append(target)
            todo += [m for _, _, m in names if m]
    return seen


def _flat(module: str) -> str:
    return module.rsplit(".", 1)[-1]


def flattened_source(module: str) -> str:
    """The source of ``module`` with its relative imports pointing at flat siblings."""
    lines = _source(module).read_text().splitlines(keepends=True)
    edits = []
    for node, target, names in _relative_imports(module):
        alias = ", ".join(f"{n} as {a}" if a else n for n, a, _ in names)
        if _is_module(target):
            text = f"from .{_flat(target)} import {alias}"
        elif all(m for _, _, m in names):
            text = f"from . import {alias}"
        else:
            raise FormatError(
                _source(module),
                f"line {node.lineno}",
                f"imports a name of the package {target}, which cannot travel with a saved folder",
            )
        indent = lines[node.lineno - 1][: node.col_offset]
        edits.append((node.lineno, node.end_lineno, f"{indent}{text}\n"))
    for start, end, text in sorted(edits, reverse=True):
        lines[start - 1 : end] = [text]
    header = (
        f"# Copied by treasure_hf {__version__} from {module} (imports made relative to this folder) so that\n"
        "# this folder loads with trust_remote_code=True where treasure_hf is not installed. Edit the package.\n"
    )
    return header + "".join(lines)


def _write_code(folder: Path, modules: list[str]) -> list[str]:
    names = [_flat(m) for m in modules]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise FormatError(folder, clashes[0], "two modules of the package would travel under the same file name")
    for module in modules:
        (folder / f"{_flat(module)}.py").write_text(flattened_source(module))
    return [f"{n}.py" for n in names]


def _update_json(path: Path, **entries) -> None:
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(entries)
    write_json(path, data)


def add_remote_code(folder: str | os.PathLike) -> list[str]:
    """Add the code and ``auto_map`` entries that let ``folder`` (a saved model, tokenizer, or a
    model with its tokenizer) load with ``trust_remote_code=True`` without treasure_hf; returns
    the files written. Idempotent."""
    folder = Path(folder)
    written: list[str] = []
    config = folder / "config.json"
    if config.exists() and json.loads(config.read_text()).get("model_type") == "treasure_event_transformer":
        written += _write_code(folder, list(dict.fromkeys(m for entry in MODEL_MODULES for m in module_closure(entry))))
        _update_json(config, auto_map=MODEL_AUTO_MAP)
    if (folder / "event_tokenizer.json").exists():
        modules = module_closure(TOKENIZER_MODULE)
        written += _write_code(folder, modules)
        _check_reachable(folder, modules)
        _update_json(folder / "tokenizer_config.json", auto_map=TOKENIZER_AUTO_MAP, tokenizer_class="EventTokenizer")
    if written:
        logger.info("%s: wrote %s for trust_remote_code loading", folder, ", ".join(sorted(set(written))))
    return written


def _check_reachable(folder: Path, modules: list[str]) -> None:
    """transformers copies a remote module's siblings by following its relative imports: every
    flattened module must be reached that way from the entry point."""
    from transformers.dynamic_module_utils import get_relative_import_files

    entry = folder / f"{_flat(TOKENIZER_MODULE)}.py"
    reached = {Path(p).name for p in get_relative_import_files(entry)} | {entry.name}
    missing = sorted(f"{_flat(m)}.py" for m in modules if f"{_flat(m)}.py" not in reached)
    if missing:
        raise FormatError(folder, missing[0], "would not be copied by transformers with the tokenizer's code")
