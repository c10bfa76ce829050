"""Real track hits in the tokenizer and the hit encoder: a tokenizer trained on generated FCC-ee
events (IDEA-like hits) reports on the hits of the converted Delphes IDEA sample relative to their
tracks, finds them by itself, and a constituent/hit model trained on generated ZH against WW reads
them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from treasure_hf import metrics, read_events
from treasure_hf.benchmark.learned import ModelArguments, predict, take, train_classifier
from treasure_hf.data import schema
from treasure_hf.data.events import EventBatch
from treasure_hf.data.generate.generator import generate
from treasure_hf.data.sources.convert import convert_files
from treasure_hf.modeling import (EventTransformerConfig, EventTransformerForSequenceClassification,
                                  config_kwargs_from_tokenizer)
from treasure_hf.tokenization.report import tokenizer_report
from treasure_hf.tokenization.training import TokenizerTrainingArguments, train_tokenizer

TYPES = ("electrons", "muons", "jets", "tracks", "met", "hits")
SKIP = ("taus", "photons")
INPUTS = ("input_ids", "token_type_ids", "attention_mask", "object_index", "hits", "hits_mask", "constituents",
          "constituents_mask")


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
    args = TokenizerTrainingArguments(method="rvq", codebook_size=32, num_stages=2, latent_dim=8, hidden_size=32,
                                      types=TYPES, steps=120, batch_size=512, learning_rate=3e-3,
                                      checkpoint_every=0, log_every=60,
                                      max_objects={"electrons": 2, "muons": 2, "jets": 4, "tracks": 12})
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
    assert report["n_events"] == 10 and report["types"]["hits"]["n_objects"] == 3 * report["types"]["tracks"]["n_objects"]
    # and a tokenizer trained on the real hits themselves (287 tracks, 861 hits)
    args = TokenizerTrainingArguments(method="vq", codebook_size=16, num_stages=1, latent_dim=4, hidden_size=16,
                                      types=("tracks", "hits"), steps=40, batch_size=256, checkpoint_every=0,
                                      log_every=20, max_objects={"tracks": 40})
    own = train_tokenizer([real], tmp_path / "real_tok", args, progress=False)
    assert list(own.sub_quantizers) == ["hits"] and own.sub_quantizers["hits"].scaler.fields[:2] == ["rel/eta",
                                                                                                    "rel/phi"]
    report = tokenizer_report(own, [real], tmp_path / "own", plots=False)
    assert report["types"]["hits"]["n_objects"] == 3 * report["types"]["tracks"]["n_objects"] > 0


def _encode(tokenizer, batch: EventBatch) -> dict[str, torch.Tensor]:
    enc = tokenizer(batch, skip_types=SKIP, return_tensors="pt", return_features=True, return_constituents=True)
    return {k: enc[k] for k in INPUTS if k in enc}


def test_a_hit_model_trained_on_generated_events_reads_the_real_hits(tokenizer, samples):
    zh, ww, real = samples
    events = EventBatch.concat([read_events(zh), read_events(ww)])
    labels = np.r_[np.ones(300), np.zeros(300)]
    enc = _encode(tokenizer, events)
    assert {"hits", "hits_mask", "constituents"} <= set(enc)  # found in the data, not asked for by name
    kw = config_kwargs_from_tokenizer(tokenizer)
    assert kw["hit_feature_size"] == enc["hits"].shape[-1]
    config = EventTransformerConfig(**kw, variant="constituent", hidden_size=32, num_hidden_layers=1,
                                    num_attention_heads=2, intermediate_size=64, num_labels=1,
                                    max_position_embeddings=max(64, tokenizer.max_sequence_length))
    torch.manual_seed(0)
    perm = np.random.default_rng(0).permutation(600)
    train, test = perm[:450], perm[450:]
    model, log = train_classifier(EventTransformerForSequenceClassification(config), take(enc, train[:360]),
                                  labels[train[:360]], take(enc, train[360:]), labels[train[360:]],
                                  ModelArguments(epochs=4, batch_size=64, patience=4), seed=0, progress=False)
    auc = metrics.roc_auc(labels[test], predict(model, take(enc, test)))
    assert auc > 0.6, auc  # ZH against WW after 4 epochs on 360 events (0.66 here; chance 0.5 +- 0.05 on 150)
    real_enc = _encode(tokenizer, read_events(real))
    assert "constituents" not in real_enc  # the Delphes file has no jet constituents: the hit encoder alone
    tracks = real_enc["token_type_ids"] == schema.TOKEN_TYPE_IDS["tracks"]
    assert torch.all(real_enc["hits_mask"].sum(-1)[tracks] == 3)
    assert torch.all(real_enc["input_ids"][:, 1] == tokenizer.convert_tokens_to_ids("[FCC-ee]"))
    scores = predict(model, real_enc)
    assert scores.shape == (10,) and np.all(np.isfinite(scores))
    without = predict(model, {**real_enc, "hits_mask": torch.zeros_like(real_enc["hits_mask"])})
    assert np.max(np.abs(scores - without)) > 1e-4  # the real hits enter through the gated residual
