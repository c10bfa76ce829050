"""Event transformers: Auto classes, save/load identity, padding and ordering invariances, the
constituent gate, overfitting a tiny batch per variant, masked event modeling, the Trainer with
ROC AUC, and loading the saved remote code where treasure_hf is not installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    Trainer,
    TrainingArguments,
)

import treasure_hf  # noqa: F401  (registers the Auto classes)
from treasure_hf.data import schema
from treasure_hf.metrics import bootstrap_ci, rejection_at_efficiency, roc_auc, roc_curve
from treasure_hf.modeling import (
    EventTransformerConfig,
    EventTransformerForMaskedEventModeling,
    EventTransformerForSequenceClassification,
    EventTransformerModel,
    mask_objects,
)

T = schema.TOKEN_TYPE_IDS
CODES = 8  # codes per stage in the synthetic vocabulary
N_CONTEXT = 5 + len(schema.EXPERIMENTS)
SEQ_TYPES = ("electrons", "muons", "jets", "tracks", "met")
VOCAB = N_CONTEXT + len(SEQ_TYPES) * 3 * CODES
VARIANTS = {
    "tokens": dict(input_mode="tokens", variant="flat"),
    "flat": dict(input_mode="flat", variant="flat"),
    "per_type": dict(input_mode="per_type", variant="flat"),
    "hierarchical": dict(input_mode="tokens", variant="hierarchical"),
    "constituent": dict(input_mode="tokens", variant="constituent"),
    "pairs": dict(input_mode="tokens", variant="flat", pair_features="kinematic", kinematic_combinations=3),
    "pooled": dict(
        input_mode="tokens", variant="flat", stage_pooling="sum", pair_features="kinematic", kinematic_combinations=3
    ),
}


def id_range(object_type: str, stage: int) -> tuple[int, int]:
    start = N_CONTEXT + (SEQ_TYPES.index(object_type) * 3 + stage) * CODES
    return start, start + CODES


def tiny_config(name: str = "tokens", **kwargs) -> EventTransformerConfig:
    params = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        max_position_embeddings=128,
        max_stages=4,
        num_labels=2,
    )
    params.update(VARIANTS[name])
    params.update(kwargs)
    return EventTransformerConfig(**params)


def make_events(
    n: int,
    *,
    stages: int = 2,
    seed: int = 0,
    signal: torch.Tensor | None = None,
    n_constituents: int = 5,
    n_hits: int = 4,
) -> dict[str, torch.Tensor]:
    """Tokenized events in the contract's layout, built directly:
    ``[CLS] [ATLAS|CMS] e.. [SEP] mu.. [SEP] j.. [SEP] trk.. [SEP] MET``, ``stages`` tokens per
    object. Signal events (``signal`` 1) have jets with upper-half codes, shifted features and a
    larger pT."""
    g = torch.Generator().manual_seed(seed)
    signal = torch.zeros(n, dtype=torch.long) if signal is None else signal
    f_size, fc, fh = tiny_config().feature_size, tiny_config().constituent_feature_size, tiny_config().hit_feature_size
    rows = []
    for i in range(n):
        sig = bool(signal[i])
        ids, types, obj, feats, kin, cons, cmask, hits, hmask = [], [], [], [], [], [], [], [], []

        def add(token_id, token_type, object_number, f=None, k=None, c=None, cm=None, h=None, hm=None):
            ids.append(token_id)
            types.append(token_type)
            obj.append(object_number)
            feats.append(torch.zeros(f_size) if f is None else f)
            kin.append(torch.zeros(6) if k is None else k)
            cons.append(torch.zeros(n_constituents, fc) if c is None else c)
            cmask.append(torch.zeros(n_constituents, dtype=torch.bool) if cm is None else cm)
            hits.append(torch.zeros(n_hits, fh) if h is None else h)
            hmask.append(torch.zeros(n_hits, dtype=torch.bool) if hm is None else hm)

        add(1, T["special"], -1)
        add(5 + int(torch.randint(0, 2, (1,), generator=g)), T["event"], -1)
        number = 0
        for t in SEQ_TYPES:
            count = 1 if t == "met" else int(torch.randint(0, 4 if t != "jets" else 5, (1,), generator=g))
            if t == "jets":
                count = max(count, 1)
            for _ in range(count):
                f = torch.randn(f_size, generator=g) + (1.0 if sig and t == "jets" else 0.0)
                pt = float(torch.rand(1, generator=g)) * 50 + (80 if sig and t == "jets" else 20)
                k = torch.tensor([pt, float(torch.randn(1, generator=g)), 1.0, pt * 1.3, 5.0, 0.0])
                c = cm = h = hm = None
                if t == "jets":
                    c = torch.randn(n_constituents, fc, generator=g)
                    cm = torch.arange(n_constituents) < int(torch.randint(1, n_constituents + 1, (1,), generator=g))
                if t == "tracks":
                    h = torch.randn(n_hits, fh, generator=g)
                    hm = torch.arange(n_hits) < int(torch.randint(1, n_hits + 1, (1,), generator=g))
                for s in range(stages):
                    lo, _ = id_range(t, s)
                    half = CODES // 2
                    code = int(torch.randint(0, half, (1,), generator=g)) + (half if sig and t == "jets" else 0)
                    add(lo + code, T[t], number, f, k, c, cm, h, hm)
                number += 1
            if t != "met":
                add(2, T["special"], -1)
        rows.append((ids, types, obj, feats, kin, cons, cmask, hits, hmask))
    width = max(len(r[0]) for r in rows)
    out = {
        k: []
        for k in (
            "input_ids",
            "token_type_ids",
            "attention_mask",
            "object_index",
            "features",
            "kinematics",
            "constituents",
            "constituents_mask",
            "hits",
            "hits_mask",
        )
    }
    for ids, types, obj, feats, kin, cons, cmask, hits, hmask in rows:
        pad = width - len(ids)
        out["input_ids"].append(torch.tensor(ids + [0] * pad))
        out["token_type_ids"].append(torch.tensor(types + [0] * pad))
        out["attention_mask"].append(torch.tensor([1] * len(ids) + [0] * pad))
        out["object_index"].append(torch.tensor(obj + [-1] * pad))
        out["features"].append(torch.cat([torch.stack(feats), torch.zeros(pad, f_size)]))
        out["kinematics"].append(torch.cat([torch.stack(kin), torch.zeros(pad, 6)]))
        out["constituents"].append(torch.cat([torch.stack(cons), torch.zeros(pad, n_constituents, fc)]))
        out["constituents_mask"].append(torch.cat([torch.stack(cmask), torch.zeros(pad, n_constituents, dtype=bool)]))
        out["hits"].append(torch.cat([torch.stack(hits), torch.zeros(pad, n_hits, fh)]))
        out["hits_mask"].append(torch.cat([torch.stack(hmask), torch.zeros(pad, n_hits, dtype=bool)]))
    return {k: torch.stack(v) for k, v in out.items()}


def pad_more(batch: dict[str, torch.Tensor], extra: int) -> dict[str, torch.Tensor]:
    """The same events with ``extra`` more padding tokens (garbage ids, features, types)."""
    out = {}
    for k, v in batch.items():
        pad_shape = (v.shape[0], extra, *v.shape[2:])
        if k == "attention_mask":
            fill = torch.zeros(pad_shape, dtype=v.dtype)
        elif k == "object_index":
            fill = torch.full(pad_shape, -1, dtype=v.dtype)
        elif k in ("input_ids", "token_type_ids"):
            fill = torch.full(pad_shape, 2, dtype=v.dtype)  # must not matter
        elif v.dtype == torch.bool:
            fill = torch.zeros(pad_shape, dtype=torch.bool)
        else:
            fill = torch.randn(pad_shape)
        out[k] = torch.cat([v, fill], 1)
    return out


# --- configuration and Auto classes ------------------------------------------------------------


def test_config_reads_the_registry_and_the_auto_classes_know_the_models():
    config = AutoConfig.for_model(EventTransformerConfig.model_type)
    assert isinstance(config, EventTransformerConfig)
    assert config.token_type_names["jets"] == schema.GROUPS["jets"].type_id == config.constituent_parent_type
    assert config.hit_parent_type == schema.GROUPS["tracks"].type_id
    assert config.type_vocab_size == max(schema.TOKEN_TYPE_IDS.values()) + 1
    assert config.kinematics_names == list(schema.FLAT_KINEMATICS)
    assert config.feature_group_names == list(schema.FEATURE_GROUPS)
    jets = [f.feature_group for f in schema.fields("common", "jets")]
    assert set(config.feature_groups["jets"]) == set(jets)  # kinematics and substructure
    assert config.num_experiments == len(schema.EXPERIMENTS)
    # the default config builds a working model of each head
    assert type(AutoModel.from_config(config)) is EventTransformerModel
    assert type(AutoModelForSequenceClassification.from_config(config)) is EventTransformerForSequenceClassification
    assert type(AutoModelForMaskedLM.from_config(config)) is EventTransformerForMaskedEventModeling
    with pytest.raises(ValueError, match="variant"):
        EventTransformerConfig(variant="graph")


# --- save / load, padding, ordering ------------------------------------------------------------


@pytest.mark.parametrize("name", list(VARIANTS))
def test_save_and_load_give_identical_logits(name, tmp_path):
    torch.manual_seed(0)
    model = EventTransformerForSequenceClassification(tiny_config(name)).eval()
    batch = make_events(6, seed=1)
    model.save_pretrained(tmp_path)
    assert {"config.json", "model.safetensors"} <= set(os.listdir(tmp_path))
    assert json.loads((tmp_path / "config.json").read_text())["variant"] == VARIANTS[name]["variant"]
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert type(loaded) is EventTransformerForSequenceClassification
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, loaded(**batch).logits)
    # the encoder alone loads from the same folder
    base = AutoModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.equal(base(**batch).pooler_output, model.transformer(**batch).pooler_output)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_padding_does_not_change_the_real_tokens(name):
    torch.manual_seed(0)
    model = EventTransformerModel(tiny_config(name)).eval()
    batch = make_events(5, seed=2)
    real = batch["attention_mask"].bool()
    with torch.no_grad():
        a = model(**batch)
        b = model(**pad_more(batch, 9))
    assert torch.allclose(a.last_hidden_state[real], b.last_hidden_state[:, : real.shape[1]][real], atol=1e-5)
    assert torch.allclose(a.pooler_output, b.pooler_output, atol=1e-5)


def permute_jets(batch: dict[str, torch.Tensor], event: int) -> dict[str, torch.Tensor]:
    """Reverse the order of the jets of one event (whole objects, stage tokens kept in order),
    renumbering object_index in sequence order as the tokenizer does."""
    out = {k: v.clone() for k, v in batch.items()}
    obj, types = batch["object_index"][event], batch["token_type_ids"][event]
    jet_pos = torch.nonzero(types == T["jets"]).flatten()
    numbers = obj[jet_pos].unique()
    assert len(numbers) >= 2, "the test event needs two jets"
    blocks = [jet_pos[obj[jet_pos] == n] for n in numbers]
    new_order = torch.cat(blocks[::-1])
    for k, v in batch.items():
        if k != "object_index":
            out[k][event, jet_pos] = v[event, new_order]
    out["object_index"][event, jet_pos] = obj[jet_pos]  # numbers stay in sequence order
    return out


@pytest.mark.parametrize("name", ["hierarchical", "pooled"])
def test_one_position_per_object_gives_what_masking_the_other_tokens_gives(name, monkeypatch):
    """The encoder runs over the objects' first tokens alone (compacted); traced for ONNX it masks
    the other tokens out as keys instead. Both give the same states."""
    torch.manual_seed(0)
    model = EventTransformerForSequenceClassification(tiny_config(name)).eval()
    batch = pad_more(make_events(6, stages=3, seed=4), 3)
    with torch.no_grad():
        compacted = model(**batch, output_hidden_states=True)
        monkeypatch.setattr(torch.jit, "is_tracing", lambda: True)
        masked = model(**batch, output_hidden_states=True)
    assert torch.allclose(compacted.logits, masked.logits, atol=1e-5)
    real = batch["attention_mask"].bool()
    starts = real & (batch["object_index"] >= 0)
    starts &= batch["object_index"] != torch.nn.functional.pad(batch["object_index"][:, :-1], (1, 0), value=-2)
    specials = real & (batch["object_index"] < 0)
    for a, b in zip(compacted.hidden_states[1:], masked.hidden_states[1:]):  # states at the positions attended to
        assert torch.allclose(a[starts | specials], b[starts | specials], atol=1e-5)


def test_stage_pooling_sums_an_objects_stages_and_is_the_flat_model_for_one_token_objects():
    torch.manual_seed(0)
    pooled = EventTransformerModel(tiny_config("pooled")).eval()
    flat = EventTransformerModel(tiny_config("pairs")).eval()
    flat.load_state_dict(pooled.state_dict())
    one = make_events(5, stages=1, seed=6)
    with torch.no_grad():
        assert torch.allclose(pooled(**one).pooler_output, flat(**one).pooler_output, atol=1e-5)
        three = make_events(5, stages=3, seed=6)
        out = pooled(**three).last_hidden_state
    obj = three["object_index"]
    for b, o in ((0, 0), (1, 2), (3, 1)):  # every stage token of an object carries the object's state
        states = out[b][obj[b] == o]
        assert len(states) == 3 and torch.allclose(states, states[:1].expand_as(states))
    with pytest.raises(ValueError, match="object_index"):
        pooled(**{k: v for k, v in three.items() if k != "object_index"})
    with pytest.raises(ValueError, match="hierarchical variant pools"):
        tiny_config("hierarchical", stage_pooling="sum")


@pytest.mark.parametrize("name", ["tokens", "per_type", "hierarchical", "pairs", "pooled"])
def test_jet_order_does_not_matter_when_jet_positions_are_disabled(name):
    torch.manual_seed(0)
    batch = make_events(8, seed=3)
    event = int(torch.nonzero((batch["token_type_ids"] == T["jets"]).sum(1) >= 4).flatten()[0])
    permuted = permute_jets(batch, event)
    assert not torch.equal(permuted["input_ids"], batch["input_ids"])
    unordered = EventTransformerModel(tiny_config(name, unordered_token_types=[T["jets"]], initializer_range=0.2))
    ordered = EventTransformerModel(tiny_config(name, initializer_range=0.2))
    with torch.no_grad():
        same = (unordered.eval()(**batch).pooler_output - unordered(**permuted).pooler_output).abs().max()
        seen = (ordered.eval()(**batch).pooler_output[event] - ordered(**permuted).pooler_output[event]).abs().max()
    # four-vector sums in another order round differently; the finest Fourier octave of ln m multiplies that by 400
    assert same < (1e-4 if name == "pairs" else 1e-5)
    assert seen > 1e-3  # with positions, the order is seen: the check above can fail


@pytest.mark.parametrize("name", ["tokens", "per_type"])
def test_experiment_conditioning_can_be_switched_off(name):
    batch = make_events(4, seed=16)
    other = {**batch, "input_ids": batch["input_ids"].clone()}
    other["input_ids"][:, 1] = 11 - batch["input_ids"][:, 1]  # [ATLAS] <-> [CMS]
    for conditioned in (True, False):
        torch.manual_seed(0)
        model = EventTransformerModel(tiny_config(name, experiment_conditioning=conditioned)).eval()
        with torch.no_grad():
            same = torch.equal(model(**batch).pooler_output, model(**other).pooler_output)
        assert same is not conditioned


# --- constituents and hits ---------------------------------------------------------------------


def test_closed_gate_reproduces_the_object_only_model():
    torch.manual_seed(0)
    batch = make_events(6, seed=4)
    sub_objects = ("constituents", "constituents_mask", "hits", "hits_mask")
    object_only = {k: v for k, v in batch.items() if k not in sub_objects}
    closed = EventTransformerModel(tiny_config("constituent")).eval()
    with torch.no_grad():  # gates shut: sigmoid(-30) ~ 1e-13
        closed.embeddings.constituent_encoder.gate.bias.fill_(-30.0)
        closed.embeddings.hit_encoder.gate.bias.fill_(-30.0)
    flat = EventTransformerModel(tiny_config("tokens")).eval()
    missing = flat.load_state_dict(
        {
            k: v
            for k, v in closed.state_dict().items()
            if not k.startswith(("embeddings.constituent_encoder", "embeddings.hit_encoder"))
        }
    )
    assert not missing.missing_keys and not missing.unexpected_keys
    with torch.no_grad():
        with_const = closed(**batch).last_hidden_state
        fallback = closed(**object_only).last_hidden_state
        reference = flat(**object_only).last_hidden_state
        open_gate = EventTransformerModel(tiny_config("constituent")).eval()
        open_gate.load_state_dict(closed.state_dict())
        open_gate.embeddings.constituent_encoder.gate.bias.zero_()
        open_gate.embeddings.hit_encoder.gate.bias.zero_()
        opened = open_gate(**batch).last_hidden_state
    assert torch.equal(fallback, reference)  # no constituents in the batch: the object-only model
    assert torch.allclose(with_const, reference, atol=1e-6)
    assert not torch.allclose(opened, reference, atol=1e-3)  # an open gate does use the constituents


def test_wrong_constituent_width_is_a_clear_error():
    batch = make_events(2, seed=5)
    batch["constituents"] = batch["constituents"][..., :3]
    with pytest.raises(ValueError, match="constituents.*constituent_feature_size"):
        EventTransformerModel(tiny_config("constituent"))(**batch)
    with pytest.raises(ValueError, match="kinematics"):
        EventTransformerModel(tiny_config("flat"))(input_ids=batch["input_ids"])


# --- training ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(VARIANTS))
def test_each_variant_overfits_a_tiny_batch(name):
    torch.manual_seed(0)
    labels = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1])
    batch = make_events(8, seed=6)  # labels unrelated to the events: only memorising works
    model = EventTransformerForSequenceClassification(tiny_config(name)).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(120):
        loss = model(**batch, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05, f"{name} did not overfit: loss {loss.item():.3f}"


def test_binary_single_logit_and_multiclass_losses():
    batch = make_events(4, seed=7)
    one = EventTransformerForSequenceClassification(tiny_config(num_labels=1))
    out = one(**batch, labels=torch.tensor([0.0, 1.0, 1.0, 0.0]))
    assert out.logits.shape == (4, 1)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(out.logits[:, 0], torch.tensor([0.0, 1.0, 1.0, 0.0]))
    assert torch.allclose(out.loss, ref)
    three = EventTransformerForSequenceClassification(tiny_config(num_labels=3))
    out = three(**batch, labels=torch.tensor([0, 2, 1, 2]))
    assert torch.allclose(out.loss, torch.nn.functional.cross_entropy(out.logits, torch.tensor([0, 2, 1, 2])))


def test_gradient_checkpointing_gives_the_same_gradients():
    batch = make_events(4, seed=8)
    labels = torch.tensor([0, 1, 0, 1])
    torch.manual_seed(0)
    model = EventTransformerForSequenceClassification(tiny_config("hierarchical")).train()
    model(**batch, labels=labels).loss.backward()
    plain = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    model.activation_checkpointing_enable()
    assert all(layer.gradient_checkpointing for layer in model.transformer.layers)
    model(**batch, labels=labels).loss.backward()
    for k, p in model.named_parameters():
        if k in plain:
            assert torch.allclose(p.grad, plain[k], atol=1e-6), k


@pytest.mark.parametrize("name", ["tokens", "constituent", "pairs"])
def test_bf16_forward_and_backward_are_finite(name):
    batch = make_events(4, seed=9)
    model = EventTransformerForSequenceClassification(tiny_config(name)).to(torch.bfloat16)
    batch = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in batch.items()}
    out = model(**batch, labels=torch.tensor([0, 1, 0, 1]))
    out.loss.backward()
    assert out.logits.dtype == torch.bfloat16 and torch.isfinite(out.loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_trainer_fine_tunes_and_reports_roc_auc(tmp_path):
    torch.manual_seed(0)
    from datasets import Dataset

    def dataset(n, seed):
        labels = torch.arange(n) % 2
        batch = make_events(n, seed=seed, signal=labels)
        keep = ("input_ids", "token_type_ids", "attention_mask", "object_index")
        return Dataset.from_dict({**{k: batch[k].tolist() for k in keep}, "labels": labels.tolist()})

    def compute_metrics(prediction):
        logits, labels = prediction.predictions, prediction.label_ids
        z = logits - logits.max(-1, keepdims=True)
        score = np.exp(z[:, 1]) / np.exp(z).sum(-1)
        return {"roc_auc": roc_auc(labels, score)}

    train, evaluation = dataset(96, 10), dataset(48, 11)
    args = TrainingArguments(
        output_dir=str(tmp_path),
        num_train_epochs=4,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=48,
        learning_rate=3e-3,
        eval_strategy="epoch",
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        use_cpu=True,
        dataloader_num_workers=0,
        seed=0,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=EventTransformerForSequenceClassification(tiny_config("tokens")),
        args=args,
        train_dataset=train,
        eval_dataset=evaluation,
        compute_metrics=compute_metrics,
    )
    trainer.train()
    metrics = trainer.evaluate()
    assert metrics["eval_roc_auc"] > 0.9, metrics


# --- masked event modeling ---------------------------------------------------------------------


def test_mask_objects_masks_whole_objects_80_10_10():
    batch = make_events(400, seed=12)
    g = torch.Generator().manual_seed(0)
    out = mask_objects(
        batch["input_ids"], batch["object_index"], 0.3, random_token_range=(N_CONTEXT, VOCAB), generator=g
    )
    ids, obj, labels = batch["input_ids"], batch["object_index"], out["labels"]
    selected = labels != -100
    assert torch.equal(labels[selected], ids[selected])
    assert not selected[obj < 0].any()  # specials, context and padding never
    for e in range(20):  # whole objects: every token of an object, or none
        for n in obj[e][obj[e] >= 0].unique():
            tokens = selected[e][obj[e] == n]
            assert tokens.all() or not tokens.any()
    assert selected.any(1)[(obj >= 0).any(1)].all()  # at least one object an event
    masked = out["masked_positions"]
    assert torch.equal(out["input_ids"][masked], torch.full_like(ids[masked], 3))
    frac_masked = masked.sum() / selected.sum()
    changed = selected & ~masked & (out["input_ids"] != ids)
    assert 0.72 < frac_masked < 0.88
    assert ((out["input_ids"][changed] >= N_CONTEXT) & (out["input_ids"][changed] < VOCAB)).all()
    assert 0.03 < changed.sum() / selected.sum() < 0.17
    ranges = {f"{T[t]}:{s}": list(id_range(t, s)) for t in SEQ_TYPES for s in range(2)}
    out = mask_objects(
        ids,
        obj,
        0.5,
        mask_fraction=0.0,
        random_fraction=1.0,
        token_type_ids=batch["token_type_ids"],
        token_id_ranges=ranges,
        generator=g,
    )
    sel = out["labels"] != -100
    for t in SEQ_TYPES:  # random ids come from the token's own type and stage range
        lo, hi = id_range(t, 0)
        first = sel & (batch["token_type_ids"] == T[t]) & (ids >= lo) & (ids < hi)
        assert ((out["input_ids"][first] >= lo) & (out["input_ids"][first] < hi)).all()


@pytest.mark.parametrize("name", ["hierarchical", "constituent", "pairs", "pooled"])
def test_a_randomly_replaced_object_shows_nothing_of_the_original(name):
    """BERT's random replacement changes an object's ids; its features, constituents and
    kinematics must go too, or the model reads the answer from them."""
    batch = make_events(16, seed=21)
    ranges = {f"{T[t]}:{s}": list(id_range(t, s)) for t in SEQ_TYPES for s in range(2)}
    out = mask_objects(
        batch["input_ids"],
        batch["object_index"],
        0.4,
        mask_fraction=0.0,
        random_fraction=1.0,
        token_type_ids=batch["token_type_ids"],
        token_id_ranges=ranges,
        generator=torch.Generator().manual_seed(3),
    )
    hidden = out["hidden_positions"]
    assert not out["masked_positions"].any() and torch.equal(hidden, out["labels"] != -100)
    torch.manual_seed(0)
    model = EventTransformerForMaskedEventModeling(tiny_config(name, token_id_ranges=ranges)).eval()
    inputs = {**batch, "input_ids": out["input_ids"], "masked_positions": hidden}
    other = dict(inputs)  # the hidden objects' original content replaced by anything else
    for key in ("features", "kinematics", "constituents"):
        noise = torch.randn_like(batch[key]).abs() * 50
        where = hidden.reshape(*hidden.shape, *([1] * (batch[key].dim() - 2)))
        other[key] = torch.where(where, noise, batch[key])
    with torch.no_grad():
        a, b = model(**inputs).logits, model(**other).logits
        leak = model(**{**other, "masked_positions": out["masked_positions"]}).logits
    assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(a, leak, atol=1e-3)  # without them, the original shows through


@pytest.mark.parametrize("name", ["tokens", "hierarchical", "constituent", "pooled"])
def test_masked_event_modeling_learns_the_masked_codes(name, tmp_path):
    torch.manual_seed(0)
    batch = make_events(8, seed=13)
    ranges = {f"{T[t]}:{s}": list(id_range(t, s)) for t in SEQ_TYPES for s in range(2)}
    model = EventTransformerForMaskedEventModeling(tiny_config(name, token_id_ranges=ranges)).train()
    masked = mask_objects(
        batch["input_ids"], batch["object_index"], 0.3, random_fraction=0.0, generator=torch.Generator().manual_seed(1)
    )
    inputs = {**batch, "input_ids": masked["input_ids"]}
    out = model(**inputs, labels=masked["labels"])
    first = out.loss.item()
    assert first == pytest.approx(np.log(CODES), rel=0.3)  # scored over each stage's 8 ids only
    sel = masked["labels"] != -100
    allowed = (out.logits[sel] > torch.finfo(out.logits.dtype).min).sum(-1)
    assert torch.equal(allowed, torch.full_like(allowed, CODES))  # only the token's own type and stage
    model.eval()
    with torch.no_grad():  # scoring only the labelled positions gives the same scores and loss
        full, few = (
            model(**inputs, labels=masked["labels"]),
            model(**inputs, labels=masked["labels"], only_labelled_logits=True),
        )
    assert few.logits.shape == (int(sel.sum()), VOCAB)
    assert torch.allclose(few.logits, full.logits[sel], atol=1e-5) and torch.allclose(few.loss, full.loss, atol=1e-6)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(80):
        loss = model(**inputs, labels=masked["labels"]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 * first
    model.eval().save_pretrained(tmp_path)
    loaded = AutoModelForMaskedLM.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.equal(loaded(**inputs).logits, model(**inputs).logits)


@pytest.mark.parametrize("name", ["flat", "per_type"])
def test_masked_event_modeling_regresses_continuous_inputs(name):
    torch.manual_seed(0)
    batch = make_events(8, seed=14)
    model = EventTransformerForMaskedEventModeling(tiny_config(name)).train()
    masked = mask_objects(
        batch["input_ids"],
        batch["object_index"],
        0.3,
        mask_fraction=1.0,
        random_fraction=0.0,
        generator=torch.Generator().manual_seed(2),
    )["masked_positions"]
    out = model(**batch, masked_positions=masked)
    width = 6 if name == "flat" else tiny_config().feature_size
    assert out.logits.shape == (*batch["input_ids"].shape, width)
    # the masked objects' own values are hidden from the model: changing them changes nothing
    changed = {
        **batch,
        "features": batch["features"] + 5 * masked[..., None],
        "kinematics": batch["kinematics"] + 5 * masked[..., None],
    }
    model.eval()
    with torch.no_grad():
        assert torch.allclose(
            model(**batch, masked_positions=masked).logits, model(**changed, masked_positions=masked).logits, atol=1e-6
        )
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = out.loss.item()
    for _ in range(80):
        loss = model(**batch, masked_positions=masked).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first


# --- remote code -------------------------------------------------------------------------------

REMOTE_SCRIPT = textwrap.dedent("""
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "treasure_hf" or name.startswith("treasure_hf."):
                raise ImportError("treasure_hf is not installed here")

    sys.meta_path.insert(0, Block())
    sys.path = [p for p in sys.path if p not in ("", ".") and "work/main" not in p or "site-packages" in p]
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForSequenceClassification
    model = AutoModelForSequenceClassification.from_pretrained("model", trust_remote_code=True).eval()
    inputs = load_file("inputs.safetensors")
    with torch.no_grad():
        logits = model(**inputs).logits
    assert not any(m == "treasure_hf" or m.startswith("treasure_hf.") for m in sys.modules)
    save_file({"logits": logits.contiguous()}, "remote_logits.safetensors")
    print(type(model).__module__)
""")


def test_saved_folder_loads_with_trust_remote_code_without_treasure_hf(tmp_path):
    torch.manual_seed(0)
    config = tiny_config("hierarchical")
    model = EventTransformerForSequenceClassification(config).eval()
    config.register_for_auto_class()
    model.register_for_auto_class("AutoModelForSequenceClassification")
    model.save_pretrained(tmp_path / "saved")
    saved = set(os.listdir(tmp_path / "saved"))
    assert {"configuration_event_transformer.py", "modeling_event_transformer.py"} <= saved
    auto_map = json.loads((tmp_path / "saved" / "config.json").read_text())["auto_map"]
    assert auto_map["AutoModelForSequenceClassification"].endswith("EventTransformerForSequenceClassification")
    # where treasure_hf is imported, the same folder loads its classes with no trust_remote_code
    assert type(AutoModelForSequenceClassification.from_pretrained(tmp_path / "saved")) is type(model)
    work = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "saved", work / "model")
    batch = make_events(4, seed=15)
    save_file(batch, str(work / "inputs.safetensors"))
    with torch.no_grad():
        expected = model(**batch).logits
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1", PYTHONNOUSERSITE="1")
    result = subprocess.run(
        [sys.executable, "-c", REMOTE_SCRIPT], cwd=work, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "transformers_modules" in result.stdout  # the copied code, not treasure_hf
    assert torch.equal(load_file(str(work / "remote_logits.safetensors"))["logits"], expected)


# --- metrics -----------------------------------------------------------------------------------


def test_roc_auc_counts_pairs_with_ties_and_weights():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.normal(y * 0.8, 1.0), 1)  # rounded: many ties
    w = rng.uniform(0.2, 2.0, 300)
    sig, bkg = s[y == 1], s[y == 0]
    ws, wb = w[y == 1], w[y == 0]
    pair = (sig[:, None] > bkg[None, :]) + 0.5 * (sig[:, None] == bkg[None, :])
    brute = (pair * ws[:, None] * wb[None, :]).sum() / (ws.sum() * wb.sum())
    assert roc_auc(y, s, w) == pytest.approx(brute, rel=1e-12)
    assert roc_auc(y, -s) == pytest.approx(1 - roc_auc(y, s))
    fpr, tpr, thr = roc_curve(y, s, w)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == pytest.approx(1) and tpr[-1] == pytest.approx(1)
    assert np.trapezoid(tpr, fpr) == pytest.approx(brute, rel=1e-9)
    assert np.all(np.diff(thr) < 0)
    assert rejection_at_efficiency(y, s, 0.5) > 1
    value, low, high = bootstrap_ci(roc_auc, y, s, n_bootstrap=50)
    assert low < value < high
    with pytest.raises(ValueError, match="both"):
        roc_auc(np.ones(4), np.arange(4.0))


# --- with the real EventTokenizer --------------------------------------------------------------


def test_models_read_what_the_event_tokenizer_returns():
    """An EventTokenizer (untrained quantizers: the layout is what matters here) encodes random
    events with features and constituents; every variant and the masked head read its output
    with a config sized by ``config_kwargs_from_tokenizer``."""
    from treasure_hf.data.synthetic import random_events
    from treasure_hf.modeling import config_kwargs_from_tokenizer
    from treasure_hf.tokenization import EventTokenizer, ObjectQuantizer, ObjectQuantizerConfig
    from treasure_hf.tokenization.features import FeatureScaler, field_names

    torch.manual_seed(0)
    quantizers = {}
    for t in ("electrons", "muons", "jets", "tracks", "met"):
        names = field_names(t)
        n = FeatureScaler(t, names).n_columns
        quantizers[t] = ObjectQuantizer(
            ObjectQuantizerConfig(
                object_type=t,
                fields=names,
                feature_mean=[0.0] * n,
                feature_std=[1.0] * n,
                method="rvq",
                codebook_size=16,
                num_stages=2,
                latent_dim=4,
                hidden_size=16,
                kmeans_init=False,
            )
        )
    events = random_events(6, 0, sub_groups=("constituents", "hits"), multiplicity={"tracks": 3}).to_padded()
    tokenizer = EventTokenizer.from_quantizers(quantizers, max_objects={"tracks": 3}, ignored_types=("taus", "photons"))
    tokenizer.fit_sub_scalers(events)
    enc = dict(tokenizer(events, return_tensors="pt", return_features=True, return_constituents=True))
    kwargs = config_kwargs_from_tokenizer(tokenizer)
    assert kwargs["vocab_size"] == tokenizer.vocab_size and kwargs["max_stages"] == 2
    assert kwargs["feature_size"] == enc["features"].shape[-1]
    assert kwargs["constituent_feature_size"] == enc["constituents"].shape[-1]
    assert enc["constituents_mask"].any()
    small = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    labels = torch.arange(6) % 2
    for name, variant in VARIANTS.items():
        config = EventTransformerConfig(**kwargs, **small, **variant)
        out = EventTransformerForSequenceClassification(config)(**enc, labels=labels)
        assert out.logits.shape == (6, 2) and torch.isfinite(out.loss), name
    config = EventTransformerConfig(**kwargs, **small, **VARIANTS["hierarchical"])
    masked = mask_objects(
        enc["input_ids"],
        enc["object_index"],
        0.3,
        token_type_ids=enc["token_type_ids"],
        token_id_ranges=config.token_id_ranges,
        generator=torch.Generator().manual_seed(0),
    )
    loss = EventTransformerForMaskedEventModeling(config)(
        **{**enc, "input_ids": masked["input_ids"]}, labels=masked["labels"]
    ).loss
    assert loss.item() == pytest.approx(np.log(16), rel=0.25)  # each masked token scored over its 16 codes


@pytest.mark.parametrize("removed", [{"pair_readout": True}, {"pooling": "mean"}, {"gate_bias_init": -3.0}])
def test_a_config_saved_with_a_removed_option_is_refused_not_misread(removed, tmp_path):
    config = EventTransformerConfig(**tiny_config("tokens").to_dict())
    saved = {**config.to_dict(), **removed}
    with pytest.raises(ValueError, match="removed"):
        EventTransformerConfig.from_dict(saved)
    # the values that match today's model load as before
    EventTransformerConfig.from_dict(
        {**config.to_dict(), "pair_readout": False, "pooling": "cls", "gate_bias_init": 0.0}
    )
