"""treasure-hf: collider events made AI-ready on the Hugging Face stack."""

__version__ = "0.1.0"

from .data.events import EventBatch, Layout, RaggedEvents  # noqa: E402
from .data.io import open_events, read_events  # noqa: E402

__all__ = ["EventBatch", "Layout", "RaggedEvents", "open_events", "read_events", "__version__"]
