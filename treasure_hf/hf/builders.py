"""Find the builder classes of ``dataset_scripts/`` (a top-level folder of the repository, or
an installed ``dataset_scripts`` package)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPTS_DIR = Path(__file__).resolve().parents[2] / "dataset_scripts"


def builder_module(name: str) -> ModuleType:
    """``dataset_scripts.NAME``, imported from the package if installed, else from the repository."""
    qualified = f"dataset_scripts.{name}"
    if qualified in sys.modules:
        return sys.modules[qualified]
    try:
        return importlib.import_module(qualified)
    except ModuleNotFoundError as exc:
        if exc.name not in ("dataset_scripts", qualified):
            raise
    path = SCRIPTS_DIR / f"{name}.py"
    if not path.exists():
        raise ModuleNotFoundError(f"dataset builder {name!r} not found (looked for {path} and {qualified})")
    spec = importlib.util.spec_from_file_location(qualified, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    spec.loader.exec_module(module)
    return module
