"""``EventTokenizer``: events -> ``input_ids``, ``token_type_ids``, ``attention_mask``, and back.

Sequence layout (the seeds')::

    [CLS] [ATLAS|CMS] e1 e2 [SEP] mu1 [SEP] j1 j2 j3 [SEP] ... [SEP] MET

Every object type the tokenizer was trained on gets its group, in token-type order (electrons,
muons, jets, taus, photons, tracks), closed by ``[SEP]`` even when empty, so a group is always
found at the same separator; objects within a group come in descending pT. MET comes last. The
event-context token is the experiment's (``experiment_id`` conditioning).

Vocabulary: ``[PAD]=0 [CLS]=1 [SEP]=2 [MASK]=3 [UNK]=4``, then one context token per experiment,
then for each object type, in sequence order, one id range per stage of its quantizer
(``num_stages`` ranges of ``codebook_size`` ids). **Stages become tokens one per stage**: an RVQ
object with 3 stages is written as 3 consecutive tokens (stage 0, 1, 2), each from its own id
range, all with the object's token type; PQ groups and FSQ codebooks likewise. A token's string
is ``TYPE:STAGE:CODE`` (``jets:1:517``).

Token type ids come from the registry: 0 for specials, 1 for the context token, then electrons 2,
muons 3, jets 4, taus 5, photons 6, tracks 7, MET 8.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import BatchEncoding, PreTrainedTokenizer

from ..data import schema
from ..data.events import EventBatch
from ..errors import InputError
from .configuration_quantizer import ObjectQuantizerConfig
from .inputs import as_event_arrays
from .modeling_quantizer import ObjectQuantizer

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = ("[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]")
PAD_ID, CLS_ID, SEP_ID, MASK_ID, UNK_ID = range(len(SPECIAL_TOKENS))
EXPERIMENT_TOKENS = tuple(f"[{name}]" for name in sorted(schema.EXPERIMENTS, key=schema.EXPERIMENTS.get))
LAYOUT_FILE, QUANTIZER_FILE = "event_tokenizer.json", "quantizers.safetensors"
DEFAULT_MAX_OBJECTS = {"electrons": 4, "muons": 4, "jets": 10, "taus": 2, "photons": 4, "tracks": 30}
"""Objects per type kept in a sequence (the highest-pT ones) unless the tokenizer says otherwise."""
KINEMATICS = schema.FLAT_KINEMATICS
"""Columns of ``kinematics`` (``return_features=True``): GeV, -, rad, GeV, GeV, e."""


class EventTokenizer(PreTrainedTokenizer):
    """Turns batches of events into token ids with one learned quantizer per object type.

    Build one with :meth:`from_quantizers` (or ``treasure train-tokenizer``); load one with
    ``EventTokenizer.from_pretrained(DIR)`` or, after ``import treasure_hf``,
    ``AutoTokenizer.from_pretrained(DIR)``. See the module docstring for the layout.
    """

    vocab_files_names = {"layout_file": LAYOUT_FILE, "quantizer_file": QUANTIZER_FILE}
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    padding_side = "right"

    def __init__(self, layout_file: str | None = None, quantizer_file: str | None = None, *,
                 quantizers: Mapping[str, ObjectQuantizer] | None = None,
                 max_objects: Mapping[str, int] | None = None, ignored_types: Sequence[str] = (), **kwargs: Any):
        if quantizers is None:
            if layout_file is None or quantizer_file is None:
                raise ValueError("EventTokenizer needs its files (from_pretrained) or quantizers (from_quantizers)")
            with open(layout_file) as f:
                layout = json.load(f)
            state = load_file(quantizer_file)
            quantizers = {}
            for t, cfg in layout["quantizers"].items():
                q = ObjectQuantizer(ObjectQuantizerConfig(**cfg))
                q.load_state_dict({k[len(t) + 1:]: v for k, v in state.items() if k.startswith(t + ".")}, strict=True)
                quantizers[t] = q.eval()
            max_objects = layout["max_objects"]
            ignored_types = layout.get("ignored_types", [])
        unknown = [t for t in quantizers if t not in schema.GROUPS or schema.GROUPS[t].kind == "sub"]
        if unknown:
            raise InputError(None, unknown[0], "is not an object type or MET in the schema registry")
        order = sorted(quantizers, key=lambda t: schema.GROUPS[t].type_id)
        self.quantizers: dict[str, ObjectQuantizer] = {t: quantizers[t].eval() for t in order}
        self.object_types = [t for t in order if schema.GROUPS[t].kind == "object"]
        self.has_met = "met" in self.quantizers
        self.ignored_types = [t for t in ignored_types if t not in self.quantizers]
        self.max_objects = {t: int((max_objects or {}).get(t, DEFAULT_MAX_OBJECTS.get(t, 8))) for t in self.object_types}
        self._offsets: dict[str, int] = {}
        next_id = len(SPECIAL_TOKENS) + len(EXPERIMENT_TOKENS)
        for t, q in self.quantizers.items():
            self._offsets[t] = next_id
            next_id += q.config.num_stages * q.config.codebook_size
        self._vocab_size = next_id
        kwargs.setdefault("pad_token", "[PAD]")
        kwargs.setdefault("cls_token", "[CLS]")
        kwargs.setdefault("sep_token", "[SEP]")
        kwargs.setdefault("mask_token", "[MASK]")
        kwargs.setdefault("unk_token", "[UNK]")
        kwargs.setdefault("model_max_length", self.max_sequence_length)
        super().__init__(**kwargs)
        self.init_kwargs.pop("quantizers", None)

    @classmethod
    def from_quantizers(cls, quantizers: Mapping[str, ObjectQuantizer], max_objects: Mapping[str, int] | None = None,
                        ignored_types: Sequence[str] = ()) -> "EventTokenizer":
        """A tokenizer from trained quantizers. ``ignored_types``: object types deliberately left out
        (their objects are skipped); any other type the data hold and no quantizer knows is an error."""
        return cls(quantizers=quantizers, max_objects=max_objects, ignored_types=ignored_types)

    # --- vocabulary ----------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    @property
    def max_sequence_length(self) -> int:
        """Length of the longest sequence with every type full: [CLS], context, groups + [SEP]s, MET."""
        n = 2 + sum(self.max_objects[t] * self.quantizers[t].config.num_stages + 1 for t in self.object_types)
        return n + (self.quantizers["met"].config.num_stages if self.has_met else 0)

    def id_range(self, object_type: str, stage: int = 0) -> range:
        """Token ids of one stage of an object type."""
        q = self.quantizers[object_type].config
        start = self._offsets[object_type] + stage * q.codebook_size
        return range(start, start + q.codebook_size)

    def experiment_token_id(self, experiment_id: int) -> int:
        return len(SPECIAL_TOKENS) + int(experiment_id)

    def get_vocab(self) -> dict[str, int]:
        vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
        vocab.update({tok: len(SPECIAL_TOKENS) + i for i, tok in enumerate(EXPERIMENT_TOKENS)})
        for t, q in self.quantizers.items():
            for s in range(q.config.num_stages):
                base = self._offsets[t] + s * q.config.codebook_size
                vocab.update({f"{t}:{s}:{c}": base + c for c in range(q.config.codebook_size)})
        return vocab

    def _convert_token_to_id(self, token: str) -> int:
        if token in SPECIAL_TOKENS:
            return SPECIAL_TOKENS.index(token)
        if token in EXPERIMENT_TOKENS:
            return len(SPECIAL_TOKENS) + EXPERIMENT_TOKENS.index(token)
        try:
            t, s, c = token.split(":")
            q = self.quantizers[t].config
            s, c = int(s), int(c)
            if 0 <= s < q.num_stages and 0 <= c < q.codebook_size:
                return self._offsets[t] + s * q.codebook_size + c
        except (ValueError, KeyError):
            pass
        return UNK_ID

    def _convert_id_to_token(self, index: int) -> str:
        index = int(index)
        if index < len(SPECIAL_TOKENS):
            return SPECIAL_TOKENS[index]
        if index < len(SPECIAL_TOKENS) + len(EXPERIMENT_TOKENS):
            return EXPERIMENT_TOKENS[index - len(SPECIAL_TOKENS)]
        for t, q in self.quantizers.items():
            rel = index - self._offsets[t]
            if 0 <= rel < q.config.num_stages * q.config.codebook_size:
                return f"{t}:{rel // q.config.codebook_size}:{rel % q.config.codebook_size}"
        return "[UNK]"

    def _tokenize(self, text: str, **kwargs: Any) -> list[str]:
        return text.split()

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        layout_path = os.path.join(save_directory, prefix + LAYOUT_FILE)
        weights_path = os.path.join(save_directory, prefix + QUANTIZER_FILE)
        layout = {"format_version": schema.FORMAT_VERSION, "sequence_types": list(self.quantizers),
                  "max_objects": self.max_objects, "ignored_types": self.ignored_types,
                  "quantizers": {t: q.config.to_diff_dict() | {"model_type": q.config.model_type}
                                 for t, q in self.quantizers.items()},
                  "id_ranges": {t: [self._offsets[t], self._offsets[t] + q.config.num_stages * q.config.codebook_size]
                                for t, q in self.quantizers.items()}}
        with open(layout_path, "w") as f:
            json.dump(layout, f, indent=1, sort_keys=True)
        state = {f"{t}.{k}": v.detach().cpu().contiguous() for t, q in self.quantizers.items()
                 for k, v in q.state_dict().items()}
        save_file(state, weights_path, metadata={"format": "pt"})
        return layout_path, weights_path

    # --- encoding ------------------------------------------------------------------------------
    def __call__(self, events: Any = None, *args: Any, padding: bool | str = "longest", truncation: bool = False,
                 max_length: int | None = None, return_tensors: str | None = None, return_features: bool = False,
                 skip_types: Sequence[str] = (), **kwargs: Any) -> BatchEncoding:
        """Tokenize a batch of events (see :mod:`.inputs` for what is accepted); text (token
        strings separated by spaces) goes to the usual transformers path."""
        if isinstance(events, str) or (isinstance(events, list) and events and isinstance(events[0], str)):
            return super().__call__(events, *args, padding=padding, truncation=truncation, max_length=max_length,
                                    return_tensors=return_tensors, **kwargs)
        return self.encode_events(events, padding=padding, truncation=truncation, max_length=max_length,
                                  return_tensors=return_tensors, return_features=return_features,
                                  skip_types=skip_types)

    def _object_arrays(self, arrays: Mapping[str, np.ndarray], t: str, width: int | None
                       ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        q = self.quantizers[t]
        kind = schema.GROUPS[t].kind
        n_events = len(next(iter(arrays.values())))
        if kind == "event":
            mask = np.ones((n_events, 1), bool)
        else:
            mask_key = schema.key("common", t, schema.MASK)
            if mask_key not in arrays:
                raise InputError(None, mask_key, f"the {t} tokenizer needs the mask of real objects")
            mask = np.asarray(arrays[mask_key], bool)[:, :width]
        values = {}
        for name in q.config.fields:
            layer, fname = name.split("/")
            k = schema.key(layer, t, fname)
            if k not in arrays:
                raise InputError(None, k, f"the {t} tokenizer needs this field and the data lack it")
            v = np.asarray(arrays[k])
            values[name] = v[:, None] if kind == "event" else v[:, :width]
        return values, mask

    def encode_object_codes(self, events: Any, skip_types: Sequence[str] = ()
                            ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], np.ndarray]:
        """Per type: (codes (n_events, max_objects, stages), mask, standardised features), and the
        experiment ids (n_events,)."""
        arrays = as_event_arrays(events)
        if not arrays:
            raise InputError(None, None, "no events to tokenize")
        n_events = len(next(iter(arrays.values())))
        for g in schema.OBJECT_TYPES:
            mask_key = schema.key("common", g, schema.MASK)
            known = g in self.quantizers or g in self.ignored_types or g in skip_types
            if not known and mask_key in arrays and np.any(arrays[mask_key]):
                raise InputError(None, mask_key, f"the data hold {g} but this tokenizer was trained without them "
                                                 f"(it knows {list(self.quantizers)}); pass skip_types=('{g}',) "
                                                 "to leave them out")
        exp_key = "common/event/experiment_id"
        if exp_key not in arrays:
            raise InputError(None, exp_key, "needed for the event-context token")
        experiment = np.asarray(arrays[exp_key]).astype(np.int64).reshape(n_events)
        if np.any((experiment < 0) | (experiment >= len(EXPERIMENT_TOKENS))):
            raise InputError(None, exp_key, f"must be one of {sorted(schema.EXPERIMENTS.values())}")
        out = {}
        for t, q in self.quantizers.items():
            values, mask = self._object_arrays(arrays, t, self.max_objects.get(t))
            flat = {k: v[mask] for k, v in values.items()}
            try:
                x = q.scaler.transform(flat)
            except InputError as exc:
                raise InputError(None, exc.key, exc.message) from None
            feats = np.zeros((*mask.shape, x.shape[-1]), np.float32)
            feats[mask] = x
            with torch.no_grad():
                codes = q.tokenize(torch.from_numpy(feats), torch.from_numpy(mask)).numpy()
            out[t] = (codes, mask, feats)
        return out, experiment

    def encode_events(self, events: Any, *, padding: bool | str = "longest", truncation: bool = False,
                      max_length: int | None = None, return_tensors: str | None = None,
                      return_features: bool = False, skip_types: Sequence[str] = ()) -> BatchEncoding:
        per_type, experiment = self.encode_object_codes(events, skip_types)
        n = len(experiment)
        # Every possible slot of the layout, then the real ones moved to the front of each row.
        ids, types, valid = [], [], []
        ids.append(np.full((n, 1), CLS_ID))
        ids.append(self.experiment_token_id(0) + experiment[:, None])
        types += [np.zeros((n, 1), np.int64), np.full((n, 1), schema.TOKEN_TYPE_IDS["event"])]
        valid += [np.ones((n, 2), bool)]
        feature_blocks: list[tuple[str, np.ndarray]] = []  # per slot block: (type or "", features)
        for t in [*self.object_types, *(["met"] if self.has_met else [])]:
            codes, mask, feats = per_type[t]
            stages = codes.shape[-1]
            size = self.quantizers[t].config.codebook_size
            tok = self._offsets[t] + np.arange(stages) * size + codes  # (n, m, stages)
            ids.append(tok.reshape(n, -1))
            types.append(np.full(ids[-1].shape, schema.TOKEN_TYPE_IDS[t]))
            valid.append(np.repeat(mask, stages, axis=1))
            feature_blocks.append((t, np.repeat(feats, stages, axis=1)))
            if t != "met":
                ids.append(np.full((n, 1), SEP_ID))
                types.append(np.zeros((n, 1), np.int64))
                valid.append(np.ones((n, 1), bool))
                feature_blocks.append(("", np.zeros((n, 1, 0), np.float32)))
        all_ids = np.concatenate(ids, 1).astype(np.int64)
        all_types = np.concatenate(types, 1).astype(np.int64)
        all_valid = np.concatenate(valid, 1)
        if truncation and max_length is not None:
            all_valid = self._truncate(all_ids, all_types, all_valid, max_length)
        order = np.argsort(~all_valid, axis=1, kind="stable")
        lengths = all_valid.sum(1)
        sorted_ids = np.take_along_axis(all_ids, order, 1)
        sorted_types = np.take_along_axis(all_types, order, 1)
        if padding is False or padding == "do_not_pad":
            if return_features:
                raise ValueError("return_features=True needs padding")
            data: dict[str, Any] = {
                "input_ids": [row[:k].tolist() for row, k in zip(sorted_ids, lengths)],
                "token_type_ids": [row[:k].tolist() for row, k in zip(sorted_types, lengths)],
                "attention_mask": [[1] * int(k) for k in lengths]}
            return BatchEncoding(data)
        width = int(lengths.max()) if padding in (True, "longest") and n else int(max_length or self.model_max_length)
        if n and lengths.max() > width:
            raise ValueError(f"events need up to {int(lengths.max())} tokens, more than max_length={width}: "
                             "pass truncation=True")
        attention = np.arange(width)[None, :] < lengths[:, None]
        data = {"input_ids": np.where(attention, _fit(sorted_ids, width), PAD_ID),
                "token_type_ids": np.where(attention, _fit(sorted_types, width), 0),
                "attention_mask": attention.astype(np.int64)}
        if return_features:
            data.update(self._features(feature_blocks, all_valid.shape[1], order, width, attention, n))
        return BatchEncoding(data, tensor_type=return_tensors)

    def _features(self, feature_blocks: list[tuple[str, np.ndarray]], n_slots: int, order: np.ndarray, width: int,
                  attention: np.ndarray, n: int) -> dict[str, np.ndarray]:
        """Per-token continuous features, aligned with ``input_ids``: ``features`` (n, L, F) the
        standardised columns of each object's own type (zero-padded to the widest type);
        ``kinematics`` (n, L, 6): pT, eta, phi, E, mass, charge in GeV, rad, e (0 for specials)."""
        width_f = max(q.scaler.n_columns for q in self.quantizers.values())
        feats = np.zeros((n, n_slots, width_f), np.float32)
        kin = np.zeros((n, n_slots, len(KINEMATICS)), np.float32)
        col = 2
        for t, block in feature_blocks:
            m = block.shape[1]
            if t:
                feats[:, col:col + m, :block.shape[2]] = block
                kin[:, col:col + m] = self._kinematics(t, block)
            col += m
        keep = attention[..., None]
        feats = _fit(np.take_along_axis(feats, order[..., None], 1), width) * keep
        kin = _fit(np.take_along_axis(kin, order[..., None], 1), width) * keep
        return {"features": feats.astype(np.float32), "kinematics": kin.astype(np.float32)}

    def _kinematics(self, t: str, block: np.ndarray) -> np.ndarray:
        """(n, m, n_columns) standardised features -> (n, m, len(KINEMATICS)) physical values."""
        flat = block.reshape(-1, block.shape[-1])
        phys = self.quantizers[t].scaler.inverse(flat)
        zeros = np.zeros(len(flat))
        cols = {name: np.asarray(phys.get(f"common/{name}", zeros), np.float64) for name in KINEMATICS}
        cols["energy"] = np.sqrt((cols["pt"] * np.cosh(cols["eta"])) ** 2 + cols["mass"] ** 2)
        return np.stack([cols[name] for name in KINEMATICS], -1).reshape(*block.shape[:2], len(KINEMATICS))

    def _truncate(self, ids: np.ndarray, types: np.ndarray, valid: np.ndarray, max_length: int) -> np.ndarray:
        """Drop whole objects, lowest pT of the most numerous type first, until rows fit."""
        valid = valid.copy()
        stage0 = np.zeros_like(valid)
        for t in self.object_types:
            stage0 |= (ids >= self._offsets[t]) & (ids < self._offsets[t] + self.quantizers[t].config.codebook_size)
        while True:
            over = valid.sum(1) > max_length
            if not over.any():
                return valid
            rows = np.nonzero(over)[0]
            for r in rows:
                counts = {tt: int((valid[r] & stage0[r] & (types[r] == schema.TOKEN_TYPE_IDS[tt])).sum())
                          for tt in self.object_types}
                tt = max(counts, key=lambda k: (counts[k], schema.GROUPS[k].type_id))
                if counts[tt] == 0:
                    raise ValueError(f"max_length={max_length} is shorter than an event with no objects")
                starts = np.nonzero(valid[r] & stage0[r] & (types[r] == schema.TOKEN_TYPE_IDS[tt]))[0]
                last = starts[-1]
                stages = self.quantizers[tt].config.num_stages
                valid[r, last:last + stages] = False

    # --- decoding ------------------------------------------------------------------------------
    def decode_events(self, input_ids: Any) -> EventBatch:
        """Token ids (n_events, L) -> physical objects: an :class:`EventBatch` holding, for every
        type of the tokenizer, its dequantised common fields (GeV, rad) padded to the tokenizer's
        ``max_objects`` with ``mask`` and ``n``, MET, and ``common/event/experiment_id``."""
        ids = np.asarray(input_ids.cpu() if isinstance(input_ids, torch.Tensor) else input_ids, np.int64)
        if ids.ndim == 1:
            ids = ids[None]
        n = len(ids)
        arrays: dict[str, np.ndarray] = {}
        ctx = (ids >= len(SPECIAL_TOKENS)) & (ids < len(SPECIAL_TOKENS) + len(EXPERIMENT_TOKENS))
        arrays["common/event/experiment_id"] = np.where(ctx.any(1), (ids * ctx).max(1) - len(SPECIAL_TOKENS), -1
                                                        ).astype(np.int8)
        for t, q in self.quantizers.items():
            cfg = q.config
            rel = ids - self._offsets[t]
            in_type = (rel >= 0) & (rel < cfg.num_stages * cfg.codebook_size)
            stage = np.where(in_type, rel // cfg.codebook_size, -1)
            code = np.where(in_type, rel % cfg.codebook_size, 0)
            starts = stage == 0
            obj = np.cumsum(starts, 1) - 1  # object number of each token within its type
            width = self.max_objects.get(t, 1)
            if schema.GROUPS[t].kind == "object":
                width = max(width, int(starts.sum(1).max()) if n else 0)
            codes = np.zeros((n, width, cfg.num_stages), np.int64)
            r, c = np.nonzero(in_type & (obj < width))
            codes[r, obj[r, c], stage[r, c]] = code[r, c]
            counts = starts.sum(1)
            mask = np.arange(width)[None, :] < counts[:, None]
            with torch.no_grad():
                x = q.decode_codes(torch.from_numpy(codes[mask])).numpy()
            phys = q.scaler.inverse(x)
            kind = schema.GROUPS[t].kind
            for name, v in phys.items():
                layer, fname = name.split("/")
                out = np.zeros(mask.shape, v.dtype)
                out[mask] = v
                arrays[schema.key(layer, t, fname)] = out[:, 0] if kind == "event" else out
            if kind == "object":
                arrays[schema.key("common", t, schema.MASK)] = mask
                arrays[schema.key("common", t, schema.COUNT)] = counts.astype(np.int32)
        return EventBatch(arrays)


def _fit(a: np.ndarray, width: int) -> np.ndarray:
    """Cut or zero-pad axis 1 to ``width``."""
    if a.shape[1] >= width:
        return a[:, :width]
    return np.pad(a, [(0, 0), (0, width - a.shape[1])] + [(0, 0)] * (a.ndim - 2))
