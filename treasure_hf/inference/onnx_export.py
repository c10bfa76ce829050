"""``treasure export-onnx``: a classifier and its tokenizer as ONNX graphs, for inference inside
the experiments' C++ frameworks (CMSSW, Athena) through ONNX Runtime.

``OUT/`` holds:

- ``model.onnx``: token ids -> logits. Inputs ``input_ids``, ``token_type_ids``, ``attention_mask``
  (int64, ``(batch, sequence)``, both dynamic) and, for models that read them, ``object_index``
  (int64, ``(batch, sequence)``) and ``kinematics`` (float32, ``(batch, sequence, 6)``). Output
  ``logits`` float32 ``(batch, num_labels)``.
- ``quantizer_TYPE.onnx`` per object type of the sequence: the physical fields of N objects ->
  their codes. Inputs: one float64 ``(N,)`` tensor per field (``pt`` in GeV, ``eta``, ``phi`` in
  radians, ...; names in ``onnx_export.json``); output ``codes`` int64 ``(N, stages)``. The graph
  holds the feature transforms (log, sin/cos), the standardisation, the encoder and the
  nearest-code search.
- ``onnx_export.json``: every tensor's name, dtype and shape, the classes, and how codes become
  token ids: ``id = first_id[TYPE] + stage * codebook_size + code``, the sequence being ``[CLS]
  [EXPERIMENT] objects of each type in descending pT, stage by stage, [SEP] after each type ...
  MET`` (:mod:`treasure_hf.tokenization.tokenization_event`).

The export is checked with onnxruntime before it is swapped in: logits within ``1e-5`` and codes
exactly equal to the package's own on ``check_events`` synthetic events.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..data.atomic import write_json
from ..data.outputs import output_directory
from ..errors import FormatError

logger = logging.getLogger(__name__)

PRODUCER = "export-onnx"
MODEL_INPUTS = ("input_ids", "token_type_ids", "attention_mask", "object_index", "kinematics")
LOGIT_TOLERANCE = 1e-5


def _input_name(field: str) -> str:
    layer, name = field.split("/", 1)
    return name if layer == "common" else f"{layer}_{name}"


ELEMENTWISE = {"aten::sinh": "Sinh", "aten::cosh": "Cosh", "aten::asinh": "Asinh", "aten::acosh": "Acosh"}
"""ONNX has these operators (opset 9) but torch's TorchScript exporter maps none of them."""


def _register_elementwise(opset: int) -> None:
    import torch

    for aten, op in ELEMENTWISE.items():
        torch.onnx.register_custom_op_symbolic(aten, lambda g, x, op=op: g.op(op, x), opset)


def _classifier_graph(model: Any):
    import torch

    class Logits(torch.nn.Module):
        def __init__(self, inner: Any):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, token_type_ids, attention_mask, object_index, kinematics):
            return self.inner(
                input_ids=input_ids,
                token_type_ids=token_type_ids,
                attention_mask=attention_mask,
                object_index=object_index,
                kinematics=kinematics,
            ).logits

    return Logits(model).eval()


def _quantizer_graph(quantizer: Any):
    """Fields of N objects -> (N, stages) codes, as ``ObjectQuantizer.tokenize`` computes them."""
    import torch

    from ..tokenization.lookup import nearest_code_dense

    if quantizer.config.encoder_type == "transformer":
        raise FormatError(
            None,
            quantizer.config.object_type,
            "a transformer encoder reads the objects of an event "
            "together: export supports the mlp and identity encoders",
        )

    class Codes(torch.nn.Module):
        def __init__(self, q: Any):
            super().__init__()
            self.q = q

        def forward(self, *fields):
            x = self.q.scaler.transform_torch(dict(zip(self.q.config.fields, fields)))
            z = self.q.encoder(x.unsqueeze(1), torch.ones(x.shape[0], 1, dtype=torch.bool)).squeeze(1)
            method = self.q.config.method
            if method == "fsq":
                return self.q.quantizer(z.unsqueeze(1))[1].reshape(z.shape[0], -1).long()
            books = self.q.codebooks()
            if method == "pq":
                parts = z.chunk(len(books), dim=-1)
                return torch.stack([nearest_code_dense(p, b) for p, b in zip(parts, books)], -1)
            stages, residual = [], z
            for book in books:
                idx = nearest_code_dense(residual, book)
                stages.append(idx)
                residual = residual - book[idx]
            return torch.stack(stages, -1)

    return Codes(quantizer).eval()


def _check_events(tokenizer: Any, n_events: int):
    """Synthetic events with every field the tokenizer reads (parity checks, not physics)."""
    from ..data import schema
    from ..data.synthetic import random_events

    layers = sorted({f.split("/")[0] for q in tokenizer.quantizers.values() for f in q.config.fields} - {"common"})
    experiments = [e for e, layer in schema.EXPERIMENT_LAYERS.items() if layer in layers] or ["ATLAS"]
    return random_events(n_events, 7, layers=tuple(layers), experiment=experiments[0]).to_padded(tokenizer.max_objects)


def export_onnx(
    model: str | os.PathLike,
    out: str | os.PathLike,
    *,
    tokenizer: str | os.PathLike | None = None,
    opset: int = 18,
    check_events: int = 64,
    overwrite: bool = False,
) -> Path:
    """Export ``model`` (a saved classifier) and its tokenizer to ``out`` (see the module
    docstring); returns ``out``."""
    import onnxruntime
    import torch

    from .events import model_inputs
    from .predict import labels_of, load_classifier

    _register_elementwise(opset)
    clf, tok = load_classifier(model, tokenizer)
    events = _check_events(tok, check_events)
    inputs = model_inputs(tok, clf.config, events)
    batch, length = next(iter(inputs.values())).shape[:2]
    full = {
        "input_ids": inputs["input_ids"],
        "token_type_ids": inputs["token_type_ids"],
        "attention_mask": inputs["attention_mask"],
        "object_index": inputs.get("object_index", torch.full((batch, length), -1, dtype=torch.long)),
        "kinematics": inputs.get("kinematics", torch.zeros(batch, length, 6)),
    }
    description: dict[str, Any] = {
        "model": os.fspath(model),
        "classes": labels_of(clf),
        "opset": opset,
        "vocab_size": int(tok.vocab_size),
        "quantizers": {},
    }
    sources = [p for p in (model, tokenizer) if p and os.path.exists(p)]
    with output_directory(out, PRODUCER, inputs=sources, overwrite=overwrite) as tmp, warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", torch.jit.TracerWarning
        )  # shape checks the trace fixes: dynamic axes cover them
        graph = _classifier_graph(clf)
        dynamic = {n: ({0: "batch", 1: "sequence"}) for n in MODEL_INPUTS}
        torch.onnx.export(
            graph,
            tuple(full[n] for n in MODEL_INPUTS),
            str(tmp / "model.onnx"),
            input_names=list(MODEL_INPUTS),
            output_names=["logits"],
            dynamic_axes={**dynamic, "logits": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
        session = onnxruntime.InferenceSession(str(tmp / "model.onnx"), providers=["CPUExecutionProvider"])
        used = [i.name for i in session.get_inputs()]
        with torch.no_grad():
            expected = clf(**inputs).logits.numpy()
        got = session.run(None, {n: full[n].numpy() for n in used})[0]
        error = float(np.abs(got - expected).max()) if got.size else 0.0
        if not error <= LOGIT_TOLERANCE:
            raise FormatError(tmp / "model.onnx", "logits", f"onnxruntime differs from torch by {error:.3g}")
        description["model_graph"] = {
            "file": "model.onnx",
            "inputs": {
                n: {
                    "dtype": "float32" if n == "kinematics" else "int64",
                    "shape": ["batch", "sequence", 6] if n == "kinematics" else ["batch", "sequence"],
                }
                for n in used
            },
            "outputs": {"logits": {"dtype": "float32", "shape": ["batch", clf.config.num_labels]}},
            "max_logit_difference": error,
        }
        for t, q in tok.quantizers.items():
            values, mask = tok._object_arrays(events.arrays, t, tok.max_objects.get(t))
            fields = [torch.from_numpy(np.asarray(values[f][mask], np.float64)) for f in q.config.fields]
            graph = _quantizer_graph(q)
            names = [_input_name(f) for f in q.config.fields]
            path = tmp / f"quantizer_{t}.onnx"
            torch.onnx.export(
                graph,
                tuple(fields),
                str(path),
                input_names=names,
                output_names=["codes"],
                dynamic_axes={**{n: {0: "objects"} for n in names}, "codes": {0: "objects"}},
                opset_version=opset,
                dynamo=False,
            )
            codes = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
                None, {n: f.numpy() for n, f in zip(names, fields)}
            )[0]
            flat = {k: v[mask] for k, v in values.items()}
            reference = (
                q.tokenize(torch.from_numpy(q.scaler.transform(flat))[:, None, :]).reshape(len(codes), -1).numpy()
            )
            if not np.array_equal(codes, reference):
                raise FormatError(
                    path,
                    "codes",
                    f"{int((codes != reference).any(-1).sum())} of {len(codes)} objects "
                    "get other codes from onnxruntime than from the tokenizer",
                )
            description["quantizers"][t] = {
                "file": path.name,
                "inputs": {
                    n: {"field": f, "dtype": "float64", "shape": ["objects"]} for n, f in zip(names, q.config.fields)
                },
                "outputs": {"codes": {"dtype": "int64", "shape": ["objects", q.config.num_stages]}},
                "first_id": tok.id_range(t, 0).start,
                "codebook_size": q.config.codebook_size,
                "stages": q.config.num_stages,
                "max_objects": tok.max_objects.get(t, 1),
                "checked_objects": len(codes),
            }
        write_json(tmp / "onnx_export.json", description, sort_keys=False)
    logger.info("exported %s to %s (logits within %.2g of torch)", model, out, error)
    return Path(out)
