"""treasure-hf: collider events made AI-ready on the Hugging Face stack."""

__version__ = "0.1.0"

from .data.events import EventBatch, Layout, RaggedEvents  # noqa: E402
from .data.io import open_events, read_events  # noqa: E402
from . import auto as _auto  # noqa: E402

_auto.install()  # Auto classes know treasure_hf's models and tokenizers once transformers loads

__all__ = ["EventBatch", "Layout", "RaggedEvents", "load_pcdf", "open_events", "read_events", "__version__"]


def __getattr__(name: str):
    """``load_pcdf`` imports ``datasets`` only when first used: ``import treasure_hf`` stays fast."""
    if name == "load_pcdf":
        from .hf.loading import load_pcdf

        return load_pcdf
    raise AttributeError(f"module 'treasure_hf' has no attribute {name!r}")
