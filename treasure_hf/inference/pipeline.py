"""The ``event-classification`` pipeline: ``transformers.pipeline("event-classification",
model=..., tokenizer=...)`` after ``import treasure_hf``.

It takes an :class:`~treasure_hf.EventBatch` (or a mapping of ``layer/group/field`` arrays), a
file path (an experiment's ROOT file, common HDF5 or PCDF, read step by step) or a list of paths,
and answers as ``text-classification`` does, one answer per event: ``{"label", "score"}`` of the
best class (``top_k=1``, the default), or the ``top_k`` best (``None``: all) as a list sorted by
score. ``function_to_apply`` is ``softmax`` (several classes), ``sigmoid`` (one logit) or ``none``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from transformers import Pipeline

from .events import open_stream
from .predict import event_logits

TASK = "event-classification"
FUNCTIONS = ("softmax", "sigmoid", "none")


class EventClassificationPipeline(Pipeline):
    """Scores of a treasure-hf event classifier, per event (see the module docstring)."""

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True

    def _sanitize_parameters(
        self,
        top_k: Any = "",
        function_to_apply: str | None = None,
        batch_events: int | None = None,
        step: int | None = None,
        **kwargs: Any,
    ):
        preprocess, forward, post = {}, {}, {}
        if step is not None:
            preprocess["step"] = step
        if batch_events is not None:
            forward["batch_events"] = batch_events
        if top_k != "":
            post["top_k"] = top_k
        if function_to_apply is not None:
            if function_to_apply not in FUNCTIONS:
                raise ValueError(f"function_to_apply must be one of {FUNCTIONS}, not {function_to_apply!r}")
            post["function_to_apply"] = function_to_apply
        return preprocess, forward, post

    def __call__(self, inputs: Any, **kwargs: Any) -> list:
        """One answer per event of ``inputs``; for a list of paths, one list of answers per path."""
        if isinstance(inputs, (str, os.PathLike)):
            return self._file(inputs, **kwargs)
        if isinstance(inputs, (list, tuple)) and inputs and all(isinstance(p, (str, os.PathLike)) for p in inputs):
            return [self._file(p, **kwargs) for p in inputs]
        return super().__call__(inputs, **kwargs)

    def _file(self, path: str | os.PathLike, step: int = 10_000, **kwargs: Any) -> list:
        answers: list = []
        with open_stream(path, step) as stream:
            for _, batch in stream.steps:
                answers += super().__call__(batch, **kwargs)
        return answers

    def preprocess(self, events: Any, step: int | None = None) -> dict[str, Any]:
        return {"events": events}

    def _forward(self, model_inputs: dict[str, Any], batch_events: int = 256) -> dict[str, Any]:
        return {"logits": event_logits(self.model, self.tokenizer, model_inputs["events"], batch_size=batch_events)}

    def postprocess(
        self, model_outputs: dict[str, Any], function_to_apply: str | None = None, top_k: int | None = 1
    ) -> list:
        logits = np.asarray(model_outputs["logits"], np.float64)
        if function_to_apply is None:
            function_to_apply = "sigmoid" if self.model.config.num_labels == 1 else "softmax"
        if function_to_apply == "softmax":
            z = np.exp(logits - logits.max(-1, keepdims=True))
            scores = z / z.sum(-1, keepdims=True)
        elif function_to_apply == "sigmoid":
            scores = 1.0 / (1.0 + np.exp(-logits))
        else:
            scores = logits
        labels = self.model.config.id2label
        answers = []
        for row in scores:
            order = np.argsort(-row, kind="stable")
            ranked = [{"label": labels[int(i)], "score": float(row[i])} for i in order]
            answers.append(ranked[0] if top_k == 1 else ranked[:top_k] if top_k is not None else ranked)
        return answers


def register() -> None:
    """Make ``pipeline("event-classification", ...)`` build this class (idempotent)."""
    from transformers import AutoModelForSequenceClassification
    from transformers.pipelines import PIPELINE_REGISTRY

    PIPELINE_REGISTRY.register_pipeline(
        TASK, pipeline_class=EventClassificationPipeline, pt_model=AutoModelForSequenceClassification, type="multimodal"
    )
