"""Physics tokenizers: one learned quantizer per object type and the ``EventTokenizer``.

Importing this package registers the classes with transformers' Auto classes
(``AutoConfig``, ``AutoModel`` for the per-type quantizers, ``AutoTokenizer`` for the event
tokenizer); ``import treasure_hf`` arranges that this happens as soon as transformers is loaded.
"""

from transformers import AutoConfig, AutoModel, AutoTokenizer

from .configuration_quantizer import ObjectQuantizerConfig
from .features import FeatureScaler
from .modeling_quantizer import ObjectQuantizer, QuantizerOutput
from .tokenization_event import EventTokenizer

AutoConfig.register(ObjectQuantizerConfig.model_type, ObjectQuantizerConfig, exist_ok=True)
AutoModel.register(ObjectQuantizerConfig, ObjectQuantizer, exist_ok=True)
AutoTokenizer.register(ObjectQuantizerConfig, tokenizer_class=EventTokenizer, exist_ok=True)

__all__ = ["EventTokenizer", "FeatureScaler", "ObjectQuantizer", "ObjectQuantizerConfig", "QuantizerOutput"]
