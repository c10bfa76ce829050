"""Registration of treasure_hf's classes with transformers' Auto classes, without making
``import treasure_hf`` pay for importing torch and transformers.

If transformers is already imported, :func:`register` runs at once; otherwise a one-shot import
hook runs it right after transformers is first imported. Either way, after ``import treasure_hf``,
``AutoTokenizer.from_pretrained``, ``AutoConfig`` and ``AutoModel`` know our classes, with no
``trust_remote_code``, and ``pipeline("event-classification")`` builds ours.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

PACKAGES_WITH_AUTO_CLASSES = ("treasure_hf.tokenization", "treasure_hf.modeling")
PIPELINES = ("treasure_hf.inference.pipeline",)
"""Modules whose ``register()`` adds a task to transformers' pipeline registry."""
_done = False


def register() -> None:
    """Import the packages that register Auto classes (idempotent)."""
    global _done
    if _done:
        return
    _done = True
    for name in PACKAGES_WITH_AUTO_CLASSES:
        importlib.import_module(name)
    for name in PIPELINES:
        importlib.import_module(name).register()


class _AfterTransformersImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself; wraps the loader of ``transformers`` to call :func:`register` after it."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "transformers":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_register(module):
            exec_module(module)
            register()

        spec.loader.exec_module = exec_and_register
        return spec


def install() -> None:
    if "transformers" in sys.modules:
        register()
    elif not any(isinstance(f, _AfterTransformersImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterTransformersImport())
