"""Real track hits in the tokenizer and the hit encoder: a tokenizer trained on generated FCC-ee
events (IDEA-like hits) reports on the hits of the converted Delphes IDEA sample relative to their
tracks, finds them by itself, and a constituent/hit model trained on generated ZH against WW reads
them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from treasure_hf import metrics, read_events
from treasure_hf.data import schema
from treasure_hf.data.events import EventBatch
from treasure_hf.data.generate.generator import generate
from treasure_hf.data.sources.convert import convert_files
from treasure_hf.tokenization.report import tokenizer_report
from treasure_hf.tokenization.training import TokenizerTrainingArguments, train_tokenizer

TYPES = ("electrons", "muons", "jets", "tracks", "met", "hits")


@pytest.fixture(scope="module")
def samples(testdata, tmp_path_factory):
    out = tmp_path_factory.mktemp("ee_hits")
    zh = generate("ee_zh", 300, 21, out / "zh", detector="idea", shard_size=300, progress=False)
    ww = generate("ee_ww", 300, 22, out / "ww", detector="idea", shard_size=300, progress=False)
    (real,) = convert_files("edm4hep", [testdata / "p8_ee_WW_ecm240_edm4hep.root"], out / "real", progress=False)
    return zh, ww, real.value["output"]


@pytest.fixture(scope="module")
def tokenizer(samples, tmp_path_factory):
    zh, ww, _ = samples
    args = TokenizerTrainingArguments(
        method="rvq",
        codebook_size=32,
        num_stages=2,
        latent_dim=8,
        hidden_size=32,
        types=TYPES,
        steps=120,
        batch_size=512,
        learning_rate=3e-3,
        checkpoint_every=0,
        log_every=60,
        max_objects={"electrons": 2, "muons": 2, "jets": 4, "tracks": 12},
    )
    return train_tokenizer([zh, ww], tmp_path_factory.mktemp("tok") / "tok", args, progress=False)


def test_the_tokenizer_reports_on_real_hits_relative_to_their_track(tokenizer, samples, tmp_path):
    zh, _, real = samples
    for name, data in (("generated", zh), ("real", real)):
        report = tokenizer_report(tokenizer, [data], tmp_path / name, plots=False)
        hits = report["types"]["hits"]
        assert hits["n_objects"] > 0, name
        for field in ("eta_rel", "phi_rel"):  # eta - eta(track), phi - phi(track)
            assert np.isfinite(hits["fields"][field]["sigma68"]), (name, field)
    # the Delphes hits: the track's point of closest approach, its first layer, the calorimeter entrance
    assert (
        report["n_events"] == 10 and report["types"]["hits"]["n_objects"] == 3 * report["types"]["tracks"]["n_objects"]
    )
    # and a tokenizer trained on the real hits themselves (287 tracks, 861 hits)
    args = TokenizerTrainingArguments(
        method="vq",
        codebook_size=16,
        num_stages=1,
        latent_dim=4,
        hidden_size=16,
        types=("tracks", "hits"),
        steps=40,
        batch_size=256,
        checkpoint_every=0,
        log_every=20,
        max_objects={"tracks": 40},
    )
    own = train_tokenizer([real], tmp_path / "real_tok", args, progress=False)
    assert list(own.sub_quantizers) == ["hits"] and own.sub_quantizers["hits"].scaler.fields[:2] == [
        "rel/eta",
        "rel/phi",
    ]
    report = tokenizer_report(own, [real], tmp_path / "own", plots=False)
    assert report["types"]["hits"]["n_objects"] == 3 * report["types"]["tracks"]["n_objects"] > 0


def test_a_hit_model_trained_on_generated_events_reads_the_real_hits(tokenizer, samples, tmp_path):
    """The shipped fine-tuning (``treasure finetune --variant constituent`` on a data set tokenized
    ``--with-sub-objects``) trains on generated ZH against WW, and the model reads the hits of the
    real Delphes events through the same data set layout and collator."""
    from treasure_hf.benchmark.rows import encode_dataset, splits
    from treasure_hf.training.arguments import FinetuneArguments, ModelShape
    from treasure_hf.training.common import model_collator
    from treasure_hf.training.finetune import finetune

    zh, ww, real = samples
    events = EventBatch.concat([read_events(zh), read_events(ww)])
    labels = np.r_[np.ones(300), np.zeros(300)].astype(np.int64)
    perm = np.random.default_rng(0).permutation(600)
    parts = {"train": perm[:360], "validation": perm[360:450], "test": perm[450:]}
    data = splits(
        tokenizer, {k: (events.select(np.sort(i)), labels[np.sort(i)]) for k, i in parts.items()}, sub_objects=True
    )
    assert {"hits", "hits_mask", "constituents", "constituents_mask"} <= set(data["train"].column_names)
    shape = ModelShape(hidden_size=32, layers=1, heads=2, intermediate_size=64, dropout=0.0, variant="constituent")
    args = FinetuneArguments(
        data="",
        out=str(tmp_path / "clf"),
        batch_size=64,
        lr=1e-3,
        epochs=4,
        early_stopping_patience=4,
        seed=0,
        report_to="none",
        save_model=False,
        overwrite=True,
        progress=False,
        shape=shape,
    )
    result = finetune(args, data=data, tokenizer=tokenizer)
    model = result.model
    assert model.config.hit_feature_size == len(tokenizer.sub_scalers["hits"].fields)
    auc = metrics.roc_auc(result.test_labels, result.test_scores[:, 1])
    assert auc > 0.6, auc  # ZH against WW after 4 epochs on 360 events (chance 0.5 +- 0.05 on 150)

    real_events = read_events(real)
    real_data = encode_dataset(tokenizer, real_events, np.zeros(real_events.n_events, np.int64), sub_objects=True)
    collator = model_collator(tokenizer, model.config, model.config.input_kind)
    batch = collator.pad(real_data.with_format("arrow")[:])
    assert batch["constituents_mask"].shape[-1] == 0  # the Delphes file has no jet constituents: hits alone
    tracks = batch["token_type_ids"] == schema.TOKEN_TYPE_IDS["tracks"]
    assert torch.all(batch["hits_mask"].sum(-1)[tracks] == 3)  # closest approach, first layer, calorimeter
    assert not batch["hits_mask"][~tracks].any()
    assert torch.all(batch["input_ids"][:, 1] == tokenizer.convert_tokens_to_ids("[FCC-ee]"))
    rows = collator(
        [dict(zip(real_data.column_names, r)) for r in zip(*[real_data[c] for c in real_data.column_names])]
    )
    assert torch.equal(rows["hits"], batch["hits"]) and torch.equal(rows["hits_mask"], batch["hits_mask"])
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        scores = model(**inputs).logits
        without = model(**{**inputs, "hits_mask": torch.zeros_like(batch["hits_mask"])}).logits
    assert scores.shape == (10, 2) and torch.isfinite(scores).all()
    assert (scores - without).abs().max() > 1e-4  # the real hits enter through the gated residual
