"""treasure-hf: collider events made AI-ready on the Hugging Face stack.

The data classes and readers are imported at once; the tokenizer and model classes (which need
torch and transformers) are imported on first use, so that ``import treasure_hf`` stays fast::

    from treasure_hf import EventTokenizer, EventTransformerForSequenceClassification
"""

__version__ = "0.1.0"

from . import auto as _auto
from .data.events import EventBatch, Layout, RaggedEvents
from .data.io import open_events, read_events

_auto.install()  # Auto classes and the event-classification pipeline, once transformers loads

_LAZY = {
    "load_pcdf": "treasure_hf.hf.loading",
    "events_from_awkward": "treasure_hf.data.awkward",
    "EventTokenizer": "treasure_hf.tokenization",
    "ObjectQuantizer": "treasure_hf.tokenization",
    "ObjectQuantizerConfig": "treasure_hf.tokenization",
    "FeatureScaler": "treasure_hf.tokenization",
    "EventTransformerConfig": "treasure_hf.modeling",
    "EventTransformerModel": "treasure_hf.modeling",
    "EventTransformerPreTrainedModel": "treasure_hf.modeling",
    "EventTransformerForSequenceClassification": "treasure_hf.modeling",
    "EventTransformerForMaskedEventModeling": "treasure_hf.modeling",
    "EventClassificationPipeline": "treasure_hf.inference.pipeline",
    "predict": "treasure_hf.inference.predict",
}
"""Names of the top-level API imported on first use, and the module that defines each."""

__all__ = ["EventBatch", "Layout", "RaggedEvents", "open_events", "read_events", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'treasure_hf' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
