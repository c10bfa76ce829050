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

**Sub-objects** (jet constituents, track hits) never enter the sequence. Described relative to their
parent (:data:`~.features.RELATIVE_FIELDS`: pT / pT(jet), eta - eta(jet), wrapped phi - phi(jet)),
they come as side outputs aligned with the parent's tokens, every token of a jet carrying its
jet's constituents: ``constituent_ids`` (n, L, Nc, stages) from a ``constituents`` quantizer (its
id ranges follow every sequence type's, tokens ``constituents:STAGE:CODE``) and continuous
``constituents`` (n, L, Nc, Fc) standardised by a scaler fitted at training time; ``hit_ids`` and
``hits`` for tracks likewise. See :meth:`EventTokenizer.encode_events` and :meth:`decode_events`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import BatchEncoding, PreTrainedTokenizer

from ..data import schema
from ..data.events import EventBatch
from ..errors import FormatError, InputError
from ..modeling.token_ranges import range_key
from .configuration_quantizer import ObjectQuantizerConfig
from .features import (
    FeatureScaler,
    feature_group_columns,
    field_names,
    sub_object_values,
)
from .inputs import as_event_arrays
from .modeling_quantizer import ObjectQuantizer
from .sequence import assemble_slots, fit_width, truncate_objects
from .sub_objects import decode_sub_objects, sub_object_outputs

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = ("[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]")
PAD_ID, CLS_ID, SEP_ID, MASK_ID, UNK_ID = range(len(SPECIAL_TOKENS))
EXPERIMENT_TOKENS = tuple(f"[{name}]" for name in sorted(schema.EXPERIMENTS, key=schema.EXPERIMENTS.get))
"""One context token per experiment of the registry, in id order. A tokenizer saved when the registry
had fewer experiments keeps its own (``experiment_tokens`` of its layout file): its ids never move."""
LEGACY_EXPERIMENT_TOKENS = EXPERIMENT_TOKENS[:2]
"""What tokenizers saved before the layout recorded ``experiment_tokens`` have: ATLAS and CMS."""
LAYOUT_FILE, QUANTIZER_FILE = "event_tokenizer.json", "quantizers.safetensors"
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

    def __init__(
        self,
        layout_file: str | None = None,
        quantizer_file: str | None = None,
        *,
        quantizers: Mapping[str, ObjectQuantizer] | None = None,
        max_objects: Mapping[str, int] | None = None,
        ignored_types: Sequence[str] = (),
        sub_scalers: Mapping[str, FeatureScaler] | None = None,
        **kwargs: Any,
    ):
        if quantizers is None:
            if layout_file is None or quantizer_file is None:
                raise ValueError("EventTokenizer needs its files (from_pretrained) or quantizers (from_quantizers)")
            quantizers, max_objects, ignored_types, sub_scalers, experiments = _load_files(layout_file, quantizer_file)
            kwargs["experiment_tokens"] = experiments
        unknown = [t for t in quantizers if t not in schema.GROUPS or t == "event"]
        if unknown:
            raise InputError(None, unknown[0], "is not an object type, sub-object type or MET in the schema registry")
        order = sorted(quantizers, key=lambda t: schema.GROUPS[t].type_id)
        self.quantizers: dict[str, ObjectQuantizer] = {
            t: quantizers[t].eval() for t in order if schema.GROUPS[t].kind != "sub"
        }
        self.sub_quantizers: dict[str, ObjectQuantizer] = {
            t: quantizers[t].eval() for t in order if schema.GROUPS[t].kind == "sub"
        }
        self.object_types = [t for t in order if schema.GROUPS[t].kind == "object"]
        for t in self.sub_quantizers:
            if schema.GROUPS[t].parent not in self.object_types:
                raise InputError(None, t, f"a {t} quantizer needs one for their parent {schema.GROUPS[t].parent}")
            if self.sub_quantizers[t].config.encoder_type == "transformer":
                raise ValueError(
                    f"the {t} quantizer must encode each sub-object alone (encoder_type 'mlp' or 'identity')"
                )
        self.has_met = "met" in self.quantizers
        self.ignored_types = [t for t in ignored_types if t not in self.quantizers]
        self.max_objects = {
            t: int((max_objects or {}).get(t, schema.SEQUENCE_CAPS.get(t, 8))) for t in self.object_types
        }
        self.sub_scalers: dict[str, FeatureScaler] = {t: q.scaler for t, q in self.sub_quantizers.items()}
        self.sub_scalers.update(dict(sub_scalers or {}))
        for t, sc in self.sub_scalers.items():
            if t not in schema.SUB_OBJECT_TYPES or not sc.mean:
                raise ValueError(f"sub_scalers[{t!r}] must be a fitted scaler of a sub-object type")
        self.max_objects.update(
            {
                t: int((max_objects or {}).get(t, schema.GROUPS[t].max_objects))
                for t in schema.SUB_OBJECT_TYPES
                if t in self.sub_scalers
            }
        )
        self.experiment_tokens: tuple[str, ...] = tuple(kwargs.pop("experiment_tokens", None) or EXPERIMENT_TOKENS)
        if self.experiment_tokens != EXPERIMENT_TOKENS[: len(self.experiment_tokens)]:
            raise ValueError(
                f"experiment tokens {list(self.experiment_tokens)} are not a prefix of the registry's "
                f"{list(EXPERIMENT_TOKENS)}"
            )
        self._ranges = type_id_ranges(self.all_quantizers, len(SPECIAL_TOKENS) + len(self.experiment_tokens))
        self._offsets: dict[str, int] = {t: r.start for t, r in self._ranges.items()}
        self._vocab_size = max(
            (r.stop for r in self._ranges.values()), default=len(SPECIAL_TOKENS) + len(self.experiment_tokens)
        )
        kwargs.setdefault("pad_token", "[PAD]")
        kwargs.setdefault("cls_token", "[CLS]")
        kwargs.setdefault("sep_token", "[SEP]")
        kwargs.setdefault("mask_token", "[MASK]")
        kwargs.setdefault("unk_token", "[UNK]")
        kwargs.setdefault("model_max_length", self.max_sequence_length)
        super().__init__(**kwargs)
        self.init_kwargs.pop("quantizers", None)
        self.init_kwargs.pop("sub_scalers", None)

    @classmethod
    def from_quantizers(
        cls,
        quantizers: Mapping[str, ObjectQuantizer],
        max_objects: Mapping[str, int] | None = None,
        ignored_types: Sequence[str] = (),
        sub_scalers: Mapping[str, FeatureScaler] | None = None,
    ) -> EventTokenizer:
        """A tokenizer from trained quantizers. ``ignored_types``: object types deliberately left out
        (their objects are skipped); any other type the data hold and no quantizer knows is an error.

        Quantizers of sub-object types (``constituents``, ``hits``) give side outputs aligned with
        their parent's tokens (``return_sub_ids=True``), never tokens of the sequence.
        ``sub_scalers``: fitted :class:`FeatureScaler` of sub-object types without a quantizer, for
        the continuous ``return_constituents=True`` features (a sub quantizer brings its own)."""
        return cls(quantizers=quantizers, max_objects=max_objects, ignored_types=ignored_types, sub_scalers=sub_scalers)

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, *args: Any, **kwargs: Any
    ) -> EventTokenizer:
        """Load a saved tokenizer (a directory, or a hub repo id). A directory that lacks its files
        is a :class:`FormatError` naming the file, not a hub look-up."""
        path = os.fspath(pretrained_model_name_or_path)
        if os.path.isdir(path):
            for name in (LAYOUT_FILE, QUANTIZER_FILE):
                if not os.path.isfile(os.path.join(path, name)):
                    raise FormatError(
                        os.path.join(path, name), None, "is missing: the directory is not a saved EventTokenizer"
                    )
        elif os.path.exists(path) or path.startswith((".", "/", "~")) or path.count("/") > 1:
            raise FormatError(path, None, "is not a saved EventTokenizer directory")
        return super().from_pretrained(path, *args, **kwargs)

    def layout(self) -> dict[str, Any]:
        """What ``event_tokenizer.json`` holds: sequence types, padding, quantizer configs, id ranges."""
        layout = {
            "format_version": schema.FORMAT_VERSION,
            "sequence_types": list(self.quantizers),
            "experiment_tokens": list(self.experiment_tokens),
            "max_objects": self.max_objects,
            "ignored_types": self.ignored_types,
            "quantizers": {
                t: q.config.to_diff_dict() | {"model_type": q.config.model_type} for t, q in self.quantizers.items()
            },
            "id_ranges": {t: [r.start, r.stop] for t, r in self._ranges.items()},
            "token_id_ranges": self.token_id_ranges(),
        }
        if self.sub_quantizers:
            layout["sub_quantizers"] = {
                t: q.config.to_diff_dict() | {"model_type": q.config.model_type} for t, q in self.sub_quantizers.items()
            }
        if self.sub_scalers:
            layout["sub_scalers"] = {t: sc.to_dict() for t, sc in self.sub_scalers.items()}
        return layout

    def token_id_ranges(self) -> dict[str, list[int]]:
        """``{"TYPE_ID:STAGE": [start, stop)}`` of the sequence types: what a model's
        ``EventTransformerConfig.token_id_ranges`` must equal to read this tokenizer's ids."""
        return {
            range_key(schema.TOKEN_TYPE_IDS[t], s): [self.id_range(t, s).start, self.id_range(t, s).stop]
            for t, q in self.quantizers.items()
            for s in range(q.config.num_stages)
        }

    @property
    def all_quantizers(self) -> dict[str, ObjectQuantizer]:
        """The sequence types' quantizers, then the sub-object types' (the order of the id ranges)."""
        return {**self.quantizers, **self.sub_quantizers}

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
        q = self.all_quantizers[object_type].config
        start = self._offsets[object_type] + stage * q.codebook_size
        return range(start, start + q.codebook_size)

    def experiment_token_id(self, experiment_id: int) -> int:
        return len(SPECIAL_TOKENS) + int(experiment_id)

    def get_vocab(self) -> dict[str, int]:
        vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
        vocab.update({tok: len(SPECIAL_TOKENS) + i for i, tok in enumerate(self.experiment_tokens)})
        for t, q in self.all_quantizers.items():
            for s in range(q.config.num_stages):
                base = self._offsets[t] + s * q.config.codebook_size
                vocab.update({f"{t}:{s}:{c}": base + c for c in range(q.config.codebook_size)})
        return vocab

    def _convert_token_to_id(self, token: str) -> int:
        if token in SPECIAL_TOKENS:
            return SPECIAL_TOKENS.index(token)
        if token in self.experiment_tokens:
            return len(SPECIAL_TOKENS) + self.experiment_tokens.index(token)
        try:
            t, s, c = token.split(":")
            q = self.all_quantizers[t].config
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
        if index < len(SPECIAL_TOKENS) + len(self.experiment_tokens):
            return self.experiment_tokens[index - len(SPECIAL_TOKENS)]
        for t, q in self.all_quantizers.items():
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
        with open(layout_path, "w") as f:
            json.dump(self.layout(), f, indent=1, sort_keys=True)
        state = {
            f"{t}.{k}": v.detach().cpu().contiguous()
            for t, q in self.all_quantizers.items()
            for k, v in q.state_dict().items()
        }
        save_file(state, weights_path, metadata={"format": "pt"})
        return layout_path, weights_path

    # --- encoding ------------------------------------------------------------------------------
    def __call__(
        self,
        events: Any = None,
        *args: Any,
        padding: bool | str = "longest",
        truncation: bool = False,
        max_length: int | None = None,
        return_tensors: str | None = None,
        return_features: bool = False,
        return_constituents: bool = False,
        return_sub_ids: bool = False,
        skip_types: Sequence[str] = (),
        **kwargs: Any,
    ) -> BatchEncoding:
        """Tokenize a batch of events (see :mod:`.inputs` for what is accepted); text (token
        strings separated by spaces) goes to the usual transformers path. See :meth:`encode_events`
        for the optional outputs."""
        if isinstance(events, str) or (isinstance(events, list) and events and isinstance(events[0], str)):
            return super().__call__(
                events,
                *args,
                padding=padding,
                truncation=truncation,
                max_length=max_length,
                return_tensors=return_tensors,
                **kwargs,
            )
        return self.encode_events(
            events,
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            return_tensors=return_tensors,
            return_features=return_features,
            return_constituents=return_constituents,
            return_sub_ids=return_sub_ids,
            skip_types=skip_types,
        )

    def _object_arrays(
        self, arrays: Mapping[str, np.ndarray], t: str, width: int | None
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

    def _encode_object_codes(
        self, arrays: Mapping[str, np.ndarray], skip_types: Sequence[str] = ()
    ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], np.ndarray]:
        """Per type: (codes (n_events, max_objects, stages), mask, standardised features), and the
        experiment ids (n_events,)."""
        if not arrays:
            raise InputError(None, None, "no events to tokenize")
        n_events = len(next(iter(arrays.values())))
        for g in schema.OBJECT_TYPES:
            mask_key = schema.key("common", g, schema.MASK)
            known = g in self.quantizers or g in self.ignored_types or g in skip_types
            if not known and mask_key in arrays and np.any(arrays[mask_key]):
                raise InputError(
                    None,
                    mask_key,
                    f"the data hold {g} but this tokenizer was trained without them "
                    f"(it knows {list(self.quantizers)}); pass skip_types=('{g}',) "
                    "to leave them out",
                )
        exp_key = "common/event/experiment_id"
        if exp_key not in arrays:
            raise InputError(None, exp_key, "needed for the event-context token")
        experiment = np.asarray(arrays[exp_key]).astype(np.int64).reshape(n_events)
        if np.any((experiment < 0) | (experiment >= len(self.experiment_tokens))):
            known = {name: i for i, name in enumerate(schema.EXPERIMENTS) if i < len(self.experiment_tokens)}
            raise InputError(
                None,
                exp_key,
                f"must be one of the ids this tokenizer knows {known} (it was saved "
                f"with {len(self.experiment_tokens)} experiment tokens)",
            )
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

    def encode_events(
        self,
        events: Any,
        *,
        padding: bool | str = "longest",
        truncation: bool = False,
        max_length: int | None = None,
        return_tensors: str | None = None,
        return_features: bool = False,
        return_constituents: bool = False,
        return_sub_ids: bool = False,
        skip_types: Sequence[str] = (),
    ) -> BatchEncoding:
        """Tokenize events. Always: ``input_ids``, ``token_type_ids``, ``attention_mask`` (n, L).

        ``return_features``: also ``features`` (n, L, F) float32, the standardised columns of each
        token's object (zero-padded to the widest type; :meth:`feature_group_columns` names them),
        ``kinematics`` (n, L, 6) float32 (pT, eta, phi, E, mass, charge in GeV, rad, e) and
        ``object_index`` (n, L) int64: the number of the token's object in sequence order from 0
        (MET included), -1 for [CLS], context, [SEP] and [PAD].

        ``return_constituents``: for every sub-object type of a parent in the sequence that the
        events carry (``common/constituents/*``, ``common/hits/*``): ``constituents`` (n, L, Nc, Fc)
        float32, the standardised :func:`~.features.field_names` columns of the constituents of the
        jet each token belongs to (eta and phi relative to the jet, pT as pT / pT(jet)), zero for
        other tokens, with ``constituents_mask`` (n, L, Nc) bool; ``hits``/``hits_mask`` likewise
        for track tokens. Needs a fitted sub-object scaler (:attr:`sub_scalers`).

        ``return_sub_ids``: for every sub-object type with a quantizer: ``constituent_ids``
        (n, L, Nc, stages) int64 vocabulary ids of the constituents' codes (``constituents:STAGE:CODE``,
        0 where there is none), aligned with the jet tokens like ``constituents``, with
        ``constituents_mask``; ``hit_ids``/``hits_mask`` likewise. :meth:`decode_events` takes them back.
        """
        arrays = as_event_arrays(events)
        per_type, experiment = self._encode_object_codes(arrays, skip_types)
        n = len(experiment)
        slots = assemble_slots(self, per_type, experiment)
        all_ids, all_types, all_valid = slots.ids, slots.types, slots.valid
        if truncation and max_length is not None:
            all_valid = truncate_objects(self, all_ids, all_types, all_valid, max_length)
        order = np.argsort(~all_valid, axis=1, kind="stable")
        lengths = all_valid.sum(1)
        sorted_ids = np.take_along_axis(all_ids, order, 1)
        sorted_types = np.take_along_axis(all_types, order, 1)
        extras = return_features or return_constituents or return_sub_ids
        if padding is False or padding == "do_not_pad":
            if extras:
                raise ValueError("return_features, return_constituents and return_sub_ids need padding")
            data: dict[str, Any] = {
                "input_ids": [row[:k].tolist() for row, k in zip(sorted_ids, lengths)],
                "token_type_ids": [row[:k].tolist() for row, k in zip(sorted_types, lengths)],
                "attention_mask": [[1] * int(k) for k in lengths],
            }
            return BatchEncoding(data)
        width = int(lengths.max()) if padding in (True, "longest") and n else int(max_length or self.model_max_length)
        if n and lengths.max() > width:
            raise ValueError(
                f"events need up to {int(lengths.max())} tokens, more than max_length={width}: pass truncation=True"
            )
        attention = np.arange(width)[None, :] < lengths[:, None]
        data = {
            "input_ids": np.where(attention, fit_width(sorted_ids, width), PAD_ID),
            "token_type_ids": np.where(attention, fit_width(sorted_types, width), 0),
            "attention_mask": attention.astype(np.int64),
        }
        # object number within its type of each token, -1 for specials and padding
        token_object = np.where(attention, fit_width(np.take_along_axis(slots.slot_object, order, 1), width), -1)
        if return_features:
            data.update(self._features(slots.feature_blocks, all_valid.shape[1], order, width, attention, n))
            starts = np.take_along_axis(slots.slot_start & all_valid, order, 1)
            data["object_index"] = np.where(token_object >= 0, np.cumsum(fit_width(starts, width), 1) - 1, -1)
        if return_constituents or return_sub_ids:
            data.update(
                sub_object_outputs(
                    self,
                    arrays,
                    per_type,
                    data["token_type_ids"],
                    token_object,
                    continuous=return_constituents,
                    ids=return_sub_ids,
                    longest=padding in (True, "longest"),
                )
            )
        return BatchEncoding(data, tensor_type=return_tensors)

    def _features(
        self,
        feature_blocks: list[tuple[str, np.ndarray]],
        n_slots: int,
        order: np.ndarray,
        width: int,
        attention: np.ndarray,
        n: int,
    ) -> dict[str, np.ndarray]:
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
                feats[:, col : col + m, : block.shape[2]] = block
                kin[:, col : col + m] = self._kinematics(t, block)
            col += m
        keep = attention[..., None]
        feats = fit_width(np.take_along_axis(feats, order[..., None], 1), width) * keep
        kin = fit_width(np.take_along_axis(kin, order[..., None], 1), width) * keep
        return {"features": feats.astype(np.float32), "kinematics": kin.astype(np.float32)}

    def feature_group_columns(self) -> dict[str, dict[str, list[int]]]:
        """``{type: {feature_group: [column indices]}}``: which columns of ``features`` (sequence
        types) or of ``constituents``/``hits`` (sub-object types) hold each registry feature group
        (``kinematics``, ``id``, ``substructure``, ...) of the type's objects."""
        out = {t: feature_group_columns(t, q.scaler.fields) for t, q in self.quantizers.items()}
        out.update({t: feature_group_columns(t, sc.fields) for t, sc in self.sub_scalers.items()})
        return out

    def fit_sub_scalers(self, events: Any, types: Sequence[str] | None = None) -> EventTokenizer:
        """Fit the standardisation of the sub-object types (default: those of a parent in the
        sequence that ``events`` carry) on ``events``, for ``return_constituents=True``; types with
        a quantizer keep the quantizer's own. Save the tokenizer afterwards to keep them."""
        arrays = as_event_arrays(events)
        if types is None:
            types = [
                t
                for t in schema.SUB_OBJECT_TYPES
                if schema.GROUPS[t].parent in self.object_types and schema.key("common", t, schema.MASK) in arrays
            ]
        for t in types:
            if t in self.sub_quantizers:
                continue
            parent = schema.GROUPS[t].parent
            values, mask = sub_object_values(arrays, t, self.max_objects.get(parent), schema.GROUPS[t].max_objects)
            if not mask.any():
                raise InputError(None, schema.key("common", t, schema.MASK), f"no {t} to fit a scaler on")
            self.sub_scalers[t] = FeatureScaler(t, field_names(t)).fit(values)
            self.max_objects.setdefault(t, int(schema.GROUPS[t].max_objects))
        return self

    def _kinematics(self, t: str, block: np.ndarray) -> np.ndarray:
        """(n, m, n_columns) standardised features -> (n, m, len(KINEMATICS)) physical values."""
        flat = block.reshape(-1, block.shape[-1])
        phys = self.quantizers[t].scaler.inverse(flat)
        zeros = np.zeros(len(flat))
        cols = {name: np.asarray(phys.get(f"common/{name}", zeros), np.float64) for name in KINEMATICS}
        cols["energy"] = np.sqrt((cols["pt"] * np.cosh(cols["eta"])) ** 2 + cols["mass"] ** 2)
        return np.stack([cols[name] for name in KINEMATICS], -1).reshape(*block.shape[:2], len(KINEMATICS))

    # --- decoding ------------------------------------------------------------------------------
    def decode_events(self, input_ids: Any, constituent_ids: Any = None, hit_ids: Any = None) -> EventBatch:
        """Token ids (n_events, L) -> physical objects: an :class:`EventBatch` holding, for every
        type of the tokenizer, its dequantised common fields (GeV, rad) padded to the tokenizer's
        ``max_objects`` with ``mask`` and ``n``, MET, and ``common/event/experiment_id``.

        ``constituent_ids``/``hit_ids`` (n_events, L, N, stages), as ``return_sub_ids=True`` gives
        them, add the decoded sub-objects: ``common/constituents/*`` (n_events, max_jets, N) in
        absolute GeV and rad (the relative values put back on the decoded jet), ``mask``, ``n``."""
        ids = _numpy(input_ids)
        if ids.ndim == 1:
            ids = ids[None]
        arrays: dict[str, np.ndarray] = {}
        ctx = (ids >= len(SPECIAL_TOKENS)) & (ids < len(SPECIAL_TOKENS) + len(self.experiment_tokens))
        arrays["common/event/experiment_id"] = np.where(
            ctx.any(1), (ids * ctx).max(1) - len(SPECIAL_TOKENS), -1
        ).astype(np.int8)
        for t, q, tokens, mask, x in self._decoded_objects(ids):
            phys = q.scaler.inverse(x)
            kind = schema.GROUPS[t].kind
            for name, v in phys.items():
                layer, fname = name.split("/")
                out = np.zeros(mask.shape, v.dtype)
                out[mask] = v
                arrays[schema.key(layer, t, fname)] = out[:, 0] if kind == "event" else out
            if kind == "object":
                arrays[schema.key("common", t, schema.MASK)] = mask
                arrays[schema.key("common", t, schema.COUNT)] = mask.sum(1).astype(np.int32)
        for t, sub_ids in (("constituents", constituent_ids), ("hits", hit_ids)):
            if sub_ids is not None:
                arrays.update(decode_sub_objects(self, t, ids, _numpy(sub_ids), arrays))
        return EventBatch(arrays)

    def _decoded_objects(self, ids: np.ndarray):
        """For every sequence type: ``(type, quantizer, tokens, mask, x)`` with ``mask``
        (n, width) the decoded objects, ``tokens`` (n, L) int64 the row of ``x`` (the object's
        dequantised standardised features, (mask.sum(), n_columns)) each token belongs to, -1
        for tokens of other types. An object starts at its stage-0 token."""
        n = len(ids)
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
            kept = in_type & (obj >= 0) & (obj < width)
            r, c = np.nonzero(kept)
            codes[r, obj[r, c], stage[r, c]] = code[r, c]
            mask = np.arange(width)[None, :] < starts.sum(1)[:, None]
            with torch.no_grad():
                x = q.decode_codes(torch.from_numpy(codes[mask])).numpy()
            row = np.full(mask.shape, -1, np.int64)
            row[mask] = np.arange(int(mask.sum()))
            tokens = np.full(ids.shape, -1, np.int64)
            tokens[r, c] = row[r, obj[r, c]]
            yield t, q, tokens, mask, x

    def decode_kinematics(self, input_ids: Any) -> np.ndarray:
        """Token ids (n_events, L) -> (n_events, L, 6) float32 kinematics of each token's object
        decoded from the tokens alone (pT, eta, phi, E, mass, charge in GeV, rad, e; E from pT,
        eta and mass), aligned with ``input_ids`` like ``return_features``' ``kinematics``, which
        hold the same columns before quantisation; 0 for specials, [MASK] and padding.

        What a model on tokens may know of an object's four-momentum: the pair features and
        four-vector combinations of :class:`~treasure_hf.modeling.EventTransformerConfig` read it.
        A sequence with some objects masked decodes the others unchanged."""
        ids = _numpy(input_ids)
        if ids.ndim == 1:
            ids = ids[None]
        kin = np.zeros((*ids.shape, len(KINEMATICS)), np.float32)
        for t, _, tokens, mask, x in self._decoded_objects(ids):
            if not len(x):
                continue
            per_object = self._kinematics(t, x[None])[0].astype(np.float32)  # (n_objects, 6)
            r, c = np.nonzero(tokens >= 0)
            kin[r, c] = per_object[tokens[r, c]]
        return kin

    def decode_features(self, input_ids: Any) -> np.ndarray:
        """Token ids (n_events, L) -> (n_events, L, F) float32: each token's object's standardised
        columns decoded from the tokens alone, aligned like ``return_features``' ``features``
        (zero-padded to the widest type; 0 for specials, [MASK] and padding). What a hierarchical
        model on tokens may read of an object's feature groups."""
        ids = _numpy(input_ids)
        if ids.ndim == 1:
            ids = ids[None]
        width = max(q.scaler.n_columns for q in self.quantizers.values())
        feats = np.zeros((*ids.shape, width), np.float32)
        for _, q, tokens, mask, x in self._decoded_objects(ids):
            if len(x):
                r, c = np.nonzero(tokens >= 0)
                feats[r, c, : x.shape[1]] = x[tokens[r, c]]
        return feats


def type_id_ranges(quantizers: Mapping[str, ObjectQuantizer], first_id: int) -> dict[str, range]:
    """The token ids of each type, in the order of ``quantizers``: ``num_stages * codebook_size``
    consecutive ids from ``first_id`` on, stage 0's first. The one builder of the vocabulary's
    ranges: :meth:`EventTokenizer.id_range` and :meth:`EventTokenizer.token_id_ranges` cut them
    into stages."""
    ranges, start = {}, first_id
    for t, q in quantizers.items():
        ranges[t] = range(start, start + q.config.num_stages * q.config.codebook_size)
        start = ranges[t].stop
    return ranges


def _numpy(x: Any) -> np.ndarray:
    return np.asarray(x.cpu() if isinstance(x, torch.Tensor) else x, np.int64)


def _load_files(
    layout_file: str, quantizer_file: str
) -> tuple[dict[str, ObjectQuantizer], dict[str, int], list[str], dict[str, FeatureScaler], tuple[str, ...]]:
    """Quantizers, padding, ignored types, sub-object scalers and experiment tokens of a saved
    tokenizer; a damaged or hand-edited file is a :class:`FormatError` naming the file and the key."""
    try:
        with open(layout_file) as f:
            layout = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError(layout_file, None, f"is not valid JSON: {exc}") from None
    try:
        state = load_file(quantizer_file)
    except Exception as exc:
        raise FormatError(
            quantizer_file, None, f"cannot be read as safetensors (damaged or truncated): {' '.join(str(exc).split())}"
        ) from None
    for key in ("quantizers", "max_objects"):
        if not isinstance(layout, dict) or not isinstance(layout.get(key), dict):
            raise FormatError(layout_file, key, "is missing or not a JSON object")
    quantizers = {}
    for t, cfg in {**layout["quantizers"], **layout.get("sub_quantizers", {})}.items():
        try:
            q = ObjectQuantizer(ObjectQuantizerConfig(**cfg))
        except (TypeError, ValueError) as exc:
            raise FormatError(layout_file, f"quantizers/{t}", " ".join(str(exc).split())) from None
        own = {k[len(t) + 1 :]: v for k, v in state.items() if k.startswith(t + ".")}
        expected = q.state_dict()
        missing = sorted(set(expected) - set(own))
        if missing:
            raise FormatError(quantizer_file, f"{t}.{missing[0]}", "tensor is missing")
        for k, v in own.items():
            if k not in expected:
                raise FormatError(quantizer_file, f"{t}.{k}", "tensor is not part of the declared quantizer")
            if tuple(v.shape) != tuple(expected[k].shape):
                raise FormatError(
                    quantizer_file,
                    f"{t}.{k}",
                    f"has shape {tuple(v.shape)}, the configuration in "
                    f"{os.path.basename(layout_file)} declares "
                    f"{tuple(expected[k].shape)}",
                )
            if v.is_floating_point() and not bool(torch.isfinite(v).all()):
                raise FormatError(quantizer_file, f"{t}.{k}", "holds NaN or infinite values")
        q.load_state_dict(own, strict=True)
        quantizers[t] = q.eval()
    try:
        sub_scalers = {t: FeatureScaler.from_dict(d) for t, d in layout.get("sub_scalers", {}).items()}
    except (TypeError, ValueError, KeyError) as exc:
        raise FormatError(layout_file, "sub_scalers", " ".join(str(exc).split())) from None
    experiments = tuple(layout.get("experiment_tokens", LEGACY_EXPERIMENT_TOKENS))
    if experiments != EXPERIMENT_TOKENS[: len(experiments)]:
        raise FormatError(
            layout_file,
            "experiment_tokens",
            f"is {list(experiments)}, not a prefix of the registry's {list(EXPERIMENT_TOKENS)}",
        )
    return quantizers, layout["max_objects"], layout.get("ignored_types", []), sub_scalers, experiments
