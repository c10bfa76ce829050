"""Event transformers: ``EventTransformerModel`` (encoder), ``...ForSequenceClassification``
and ``...ForMaskedEventModeling`` (the foundation model's pretraining head).

Importing this package registers them with transformers' Auto classes: ``AutoConfig``,
``AutoModel``, ``AutoModelForSequenceClassification`` and, for the masked-modeling head,
``AutoModelForMaskedLM``; ``import treasure_hf`` arranges that this happens as soon as
transformers is loaded, so no ``trust_remote_code`` is needed.
"""

from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification

from .configuration_event_transformer import EventTransformerConfig
from .defaults import config_kwargs_from_tokenizer, registry_defaults
from .masking import mask_objects
from .modeling_event_transformer import (
    EventTransformerForMaskedEventModeling,
    EventTransformerForSequenceClassification,
    EventTransformerModel,
    EventTransformerPreTrainedModel,
)

AutoConfig.register(EventTransformerConfig.model_type, EventTransformerConfig, exist_ok=True)
AutoModel.register(EventTransformerConfig, EventTransformerModel, exist_ok=True)
AutoModelForSequenceClassification.register(
    EventTransformerConfig, EventTransformerForSequenceClassification, exist_ok=True
)
AutoModelForMaskedLM.register(EventTransformerConfig, EventTransformerForMaskedEventModeling, exist_ok=True)

__all__ = [
    "EventTransformerConfig",
    "EventTransformerForMaskedEventModeling",
    "EventTransformerForSequenceClassification",
    "EventTransformerModel",
    "EventTransformerPreTrainedModel",
    "config_kwargs_from_tokenizer",
    "mask_objects",
    "registry_defaults",
]
