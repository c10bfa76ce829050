"""Physics tokenizers: quantizers, the EventTokenizer's layout, save/load identity, decoding, bad input."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from treasure_hf import read_events
from treasure_hf.data import schema
from treasure_hf.data.h5 import write_h5
from treasure_hf.data.synthetic import random_events
from treasure_hf.errors import InputError
from treasure_hf.tokenization import EventTokenizer, ObjectQuantizer, ObjectQuantizerConfig
from treasure_hf.tokenization.features import FeatureScaler, field_names
from treasure_hf.tokenization.lookup import nearest_code
from treasure_hf.tokenization.report import tokenizer_report
from treasure_hf.tokenization.training import (
    TokenizerTrainingArguments,
    collect_objects,
    train_quantizer,
    train_tokenizer,
)

TYPES = ("electrons", "muons", "jets", "met")


@pytest.fixture(scope="module")
def events_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "events.h5"
    write_h5(path, random_events(4000, 21, multiplicity={"electrons": 1.5, "muons": 1.5}).to_padded())
    return path


@pytest.fixture(scope="module")
def trained(events_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("tokenizer")
    args = TokenizerTrainingArguments(
        method="rvq",
        codebook_size=64,
        num_stages=3,
        latent_dim=8,
        hidden_size=64,
        types=TYPES,
        steps=300,
        batch_size=512,
        learning_rate=3e-3,
        checkpoint_every=0,
        log_every=100,
    )
    tokenizer = train_tokenizer([events_file], out, args, progress=False)
    return tokenizer, out


def test_nearest_code_is_the_argmin_of_the_distances():
    g = torch.Generator().manual_seed(0)
    x, book = torch.randn(5000, 16, generator=g), torch.randn(300, 16, generator=g)
    assert torch.equal(nearest_code(x, book, rows=777, cols=128), torch.cdist(x, book).argmin(-1))
    assert torch.equal(nearest_code(x, book), torch.cdist(x, book).argmin(-1))


@pytest.mark.parametrize("method", ["vq", "fsq", "rvq", "pq"])
def test_each_method_learns_and_its_lookup_agrees_with_training(method, events_file, tmp_path):
    data = collect_objects(
        [events_file], ["jets"], per_event=False, max_objects={"jets": 20}, cap=20_000, progress=False
    )["jets"]
    args = TokenizerTrainingArguments(
        method=method,
        codebook_size=64,
        num_stages=2,
        latent_dim=8,
        hidden_size=64,
        steps=150,
        batch_size=512,
        learning_rate=3e-3,
        checkpoint_every=0,
    )
    from accelerate import Accelerator

    train, evaluation = data.split(0.2, 0)
    model, history = train_quantizer("jets", train, evaluation, args, Accelerator(cpu=True), progress=False)
    with torch.no_grad():
        codes = model.tokenize(evaluation.features, evaluation.mask)
        assert torch.equal(codes, model(evaluation.features, evaluation.mask).codes)  # own lookup == library's
        mse = float(((model.decode_codes(codes) - evaluation.features) ** 2).mean())
    assert mse < 0.5, mse  # standardised units: the trivial reconstruction (the mean) scores 1
    assert codes.shape[-1] == (1 if method == "vq" else 2)
    model.save_pretrained(tmp_path / method)
    assert {p.name for p in (tmp_path / method).iterdir()} == {"config.json", "model.safetensors"}
    again = ObjectQuantizer.from_pretrained(tmp_path / method)
    assert torch.equal(again.tokenize(evaluation.features, evaluation.mask), codes)


def test_sequence_layout(trained, events_file):
    tokenizer, _ = trained
    batch = read_events(events_file, 0, 64)
    enc = tokenizer(batch, skip_types=("tracks", "taus", "photons"), return_tensors="np")
    stages = 3
    for i in range(64):
        ids = enc["input_ids"][i][enc["attention_mask"][i] == 1]
        types = enc["token_type_ids"][i][enc["attention_mask"][i] == 1]
        assert ids[0] == tokenizer.cls_token_id and types[0] == 0
        assert tokenizer.convert_ids_to_tokens(int(ids[1])) == "[ATLAS]" and types[1] == schema.TOKEN_TYPE_IDS["event"]
        groups = np.split(ids[2:], np.nonzero(ids[2:] == tokenizer.sep_token_id)[0] + 1)
        assert len(groups) == 4  # electrons [SEP] muons [SEP] jets [SEP] MET
        for t, group in zip(("electrons", "muons", "jets"), groups):
            n = min(int(batch.counts(t)[i]), tokenizer.max_objects[t])
            assert len(group) == n * stages + 1 and group[-1] == tokenizer.sep_token_id
            for s in range(stages):
                assert all(v in tokenizer.id_range(t, s) for v in group[s:-1:stages])
        assert len(groups[3]) == stages and all(v in tokenizer.id_range("met", s) for s, v in enumerate(groups[3]))
        expected_types = np.where(ids == tokenizer.sep_token_id, 0, types)
        assert np.array_equal(types, expected_types)
    assert set(np.unique(enc["token_type_ids"])) <= {0, 1, 2, 3, 4, 8}


def test_padding_truncation_and_tensors(trained, events_file):
    tokenizer, _ = trained
    batch = read_events(events_file, 0, 16)
    kw = dict(skip_types=("tracks", "taus", "photons"))
    longest = tokenizer(batch, return_tensors="pt", **kw)
    assert isinstance(longest["input_ids"], torch.Tensor)
    assert longest["attention_mask"].sum(1).max() == longest["input_ids"].shape[1]
    fixed = tokenizer(batch, padding="max_length", max_length=64, **kw)
    assert fixed["input_ids"].shape == (16, 64)
    assert np.array_equal(fixed["input_ids"][:, : longest["input_ids"].shape[1]], longest["input_ids"].numpy())
    ragged = tokenizer(batch, padding=False, **kw)
    assert [len(r) for r in ragged["input_ids"]] == longest["attention_mask"].sum(1).tolist()
    cut = tokenizer(batch, truncation=True, max_length=14, padding="max_length", **kw)
    assert cut["attention_mask"].sum(1).max() <= 14
    assert (cut["input_ids"] == tokenizer.sep_token_id).sum(1).min() == 3  # groups survive, objects go
    with pytest.raises(ValueError, match="truncation"):
        tokenizer(batch, padding="max_length", max_length=8, **kw)


def test_save_load_identity_and_auto_tokenizer(trained, events_file, tmp_path):
    from transformers import AutoTokenizer

    tokenizer, out = trained
    batch = read_events(events_file, 0, 200)
    kw = dict(skip_types=("tracks", "taus", "photons"), return_tensors="np")
    reference = tokenizer(batch, **kw)["input_ids"]
    loaded = AutoTokenizer.from_pretrained(out)
    assert type(loaded) is EventTokenizer
    assert np.array_equal(loaded(batch, **kw)["input_ids"], reference)
    tokenizer.save_pretrained(tmp_path / "again")
    files = {p.name for p in (tmp_path / "again").iterdir()}
    assert {"event_tokenizer.json", "quantizers.safetensors", "tokenizer_config.json"} <= files
    assert not any(name.endswith((".bin", ".pkl", ".pt")) for name in files)
    assert np.array_equal(EventTokenizer.from_pretrained(tmp_path / "again")(batch, **kw)["input_ids"], reference)
    text = " ".join(loaded.convert_ids_to_tokens(reference[0].tolist()))
    assert loaded.convert_tokens_to_ids(text.split()) == reference[0].tolist()


def test_decode_recovers_the_physics_within_the_measured_resolution(trained, events_file, tmp_path):
    tokenizer, out = trained
    report = tokenizer_report(tokenizer, [events_file], tmp_path / "report", n_events=3000)
    assert (tmp_path / "report" / "muons.png").stat().st_size > 10_000
    muon_pt = report["types"]["muons"]["fields"]["pt"]
    assert muon_pt["resolution"] == "relative" and muon_pt["sigma68"] < 0.15, muon_pt
    assert report["types"]["jets"]["utilisation"] > 0.5
    batch = read_events(events_file, 3000, 3500)  # not used for the report above
    decoded = tokenizer.decode_events(tokenizer(batch, skip_types=("tracks", "taus", "photons"))["input_ids"])
    mask = batch.mask("muons")[:, : tokenizer.max_objects["muons"]]
    assert np.array_equal(decoded.mask("muons")[:, : mask.shape[1]], mask)
    rel = (
        decoded["common/muons/pt"][:, : mask.shape[1]][mask] - batch["common/muons/pt"][:, : mask.shape[1]][mask]
    ) / batch["common/muons/pt"][:, : mask.shape[1]][mask]
    assert np.mean(np.abs(rel) < 3 * muon_pt["sigma68"]) > 0.9
    charge = decoded["common/muons/charge"][:, : mask.shape[1]][mask]
    assert np.mean(charge == batch["common/muons/charge"][:, : mask.shape[1]][mask]) > 0.9
    assert np.array_equal(decoded["common/event/experiment_id"], batch["common/event/experiment_id"])


def test_kinematics_decoded_from_tokens_follow_the_objects_and_hide_masked_ones(trained, events_file):
    tokenizer, _ = trained
    batch = read_events(events_file, 3000, 3200)
    enc = tokenizer(batch, skip_types=("tracks", "taus", "photons"), return_features=True, return_tensors="np")
    kin = tokenizer.decode_kinematics(enc["input_ids"])
    assert kin.shape == enc["kinematics"].shape and kin.dtype == np.float32
    real = enc["kinematics"][..., 0] > 0
    objects = real & (enc["token_type_ids"] != schema.TOKEN_TYPE_IDS["met"])  # MET pT may decode to 0
    assert np.array_equal(kin[..., 0] > 0, objects | ((kin[..., 0] > 0) & real))  # nothing outside objects
    assert np.all(kin[objects][:, 0] > 0)
    # each token carries its own object's decoded values: those of decode_events
    decoded = tokenizer.decode_events(enc["input_ids"])
    muon_tokens = enc["token_type_ids"] == schema.TOKEN_TYPE_IDS["muons"]
    obj = enc["object_index"]
    first = muon_tokens & (obj != np.concatenate([np.full((len(obj), 1), -2), obj[:, :-1]], 1))
    for ev in range(20):
        pts = kin[ev][muon_tokens[ev]][:, 0]
        n = int(decoded["common/muons/n"][ev])
        assert np.allclose(np.unique(pts), np.unique(decoded["common/muons/pt"][ev, :n]), rtol=1e-6)
    # within the tokenizer's resolution of the original kinematics
    rel = np.abs(kin[..., 0][objects] / enc["kinematics"][..., 0][objects] - 1)
    assert np.median(rel) < 0.1
    assert np.mean(kin[..., 5][objects] == enc["kinematics"][..., 5][objects]) > 0.95  # charges survive
    # a [MASK]ed object decodes to nothing, the others are unchanged
    ids = enc["input_ids"].copy()
    ev = int(np.nonzero(first.sum(1) >= 2)[0][0])
    start = int(np.nonzero(first[ev])[0][0])
    stages = tokenizer.quantizers["muons"].config.num_stages
    ids[ev, start : start + stages] = tokenizer.mask_token_id
    masked = tokenizer.decode_kinematics(ids)
    assert np.all(masked[ev, start : start + stages] == 0)
    keep = np.ones(ids.shape[1], bool)
    keep[start : start + stages] = False
    assert np.array_equal(masked[ev, keep], kin[ev, keep])
    assert np.array_equal(np.delete(masked, ev, 0), np.delete(kin, ev, 0))


def test_rows_of_an_hf_dataset_are_tokenized_like_the_batch(trained, events_file):
    tokenizer, _ = trained
    batch = read_events(events_file, 0, 5)
    rows = [
        {
            "common": {
                g: {k.split("/")[2]: batch[k][i] for k in batch.keys() if k.split("/")[:2] == ["common", g]}
                for g in ("electrons", "muons", "jets", "met", "event")
            }
        }
        for i in range(5)
    ]
    a = tokenizer(rows, return_tensors="np")["input_ids"]
    b = tokenizer(batch, skip_types=("tracks", "taus", "photons"), return_tensors="np")["input_ids"]
    assert np.array_equal(a, b)


def test_bad_input_is_refused_with_the_key_named(trained, events_file):
    tokenizer, _ = trained
    batch = read_events(events_file, 0, 20)
    kw = dict(skip_types=("tracks", "taus", "photons"))
    nan = batch.select(np.arange(20))
    nan.arrays = dict(nan.arrays)
    nan.arrays["common/muons/pt"] = nan["common/muons/pt"].copy()
    row = int(np.argmax(nan.mask("muons")[:, 0]))
    nan.arrays["common/muons/pt"][row, 0] = np.nan
    with pytest.raises(InputError, match="common/muons/pt.*non-finite"):
        tokenizer(nan, **kw)
    missing = {k: v for k, v in batch.arrays.items() if k != "common/jets/eta"}
    with pytest.raises(InputError, match="common/jets/eta"):
        tokenizer(missing, **kw)
    with pytest.raises(InputError, match="common/bosons/pt"):
        tokenizer({**batch.arrays, "common/bosons/pt": batch["common/jets/pt"]}, **kw)
    # a tokenizer whose training data had no taus (not one that left them out on purpose)
    no_taus = EventTokenizer.from_quantizers(
        tokenizer.quantizers, tokenizer.max_objects, ignored_types=("tracks", "photons")
    )
    with pytest.raises(InputError, match="common/taus/mask.*trained without"):
        no_taus(batch)
    assert tokenizer(batch)["input_ids"].shape[0] == 20  # the trained one left taus out on purpose


def test_identity_rvq_is_residual_kmeans_whose_error_falls_with_every_stage(events_file, tmp_path):
    """No network: the codebooks quantize the standardised features themselves, so every residual
    stage shrinks the error (an MLP autoencoder's levels off at its decoder's precision)."""
    from accelerate import Accelerator

    data = collect_objects(
        [events_file], ["muons"], per_event=False, max_objects={"muons": 4}, cap=20_000, progress=False
    )["muons"]
    args = TokenizerTrainingArguments(
        method="rvq",
        codebook_size=64,
        num_stages=6,
        encoder_type="identity",
        pt_loss_weight=3.0,
        steps=60,
        batch_size=1024,
        checkpoint_every=0,
    )
    train, evaluation = data.split(0.2, 0)
    model, history = train_quantizer("muons", train, evaluation, args, Accelerator(cpu=True), progress=False)
    assert not list(model.parameters())  # the codebooks alone, updated by EMA
    assert model.config.latent_dim == model.scaler.n_columns and history
    x, m = evaluation.features, evaluation.mask
    codes = model.tokenize(x, m)
    errors = []
    with torch.no_grad():
        for k in range(1, args.num_stages + 1):
            latent = sum(book[codes[..., s]] for s, book in enumerate(model.codebooks()[:k]))
            errors.append(float(((model.decoder(latent) - x)[m] ** 2).mean()))
        assert float(((model.decode_codes(codes) - x)[m] ** 2).mean()) == pytest.approx(errors[-1])
    assert all(later < 0.7 * earlier for earlier, later in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.01 * errors[0], errors
    model.save_pretrained(tmp_path / "identity")
    again = ObjectQuantizer.from_pretrained(tmp_path / "identity")
    assert again.config.encoder_type == "identity" and torch.equal(again.tokenize(x, m), codes)


def test_tokenizer_training_resumes_to_the_same_weights(events_file, tmp_path):
    args = TokenizerTrainingArguments(
        method="rvq",
        codebook_size=32,
        num_stages=2,
        latent_dim=4,
        hidden_size=32,
        types=("muons",),
        steps=40,
        batch_size=256,
        checkpoint_every=20,
        log_every=10,
    )
    train_tokenizer([events_file], tmp_path / "a", args, progress=False)
    checkpoints = tmp_path / "a" / "checkpoints" / "muons"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-0000020", "step-0000040"]
    import shutil

    partial = tmp_path / ".b.partial" / "checkpoints"  # where a run interrupted after step 20 left its work
    shutil.copytree(tmp_path / "a" / "checkpoints", partial)
    shutil.rmtree(partial / "muons" / "step-0000040")
    train_tokenizer([events_file], tmp_path / "b", args, resume=True, progress=False)
    from safetensors.torch import load_file

    a, b = load_file(tmp_path / "a" / "quantizers.safetensors"), load_file(tmp_path / "b" / "quantizers.safetensors")
    assert a.keys() == b.keys() and all(
        torch.equal(a[k], b[k]) for k in a if "codebook_mean" not in k and "codebook_variance" not in k
    )
    log = json.loads((tmp_path / "b" / "training_log.json").read_text())
    assert {"reconstruction_mse", "utilisation", "perplexity"} <= set(log["types"]["muons"]["final"])


def test_feature_scaler_round_trip_is_exact_for_angles_and_integers():
    ev = random_events(500, 2)
    values = {f"common/{k.split('/')[2]}": v for k, v in ev.objects.items() if k.startswith("common/electrons/")}
    scaler = FeatureScaler("electrons", field_names("electrons")).fit(values)
    back = scaler.inverse(scaler.transform(values))
    assert np.allclose(back["common/pt"], values["common/pt"], rtol=1e-5)
    assert np.allclose(back["common/phi"], values["common/phi"], atol=1e-5)
    assert np.array_equal(back["common/charge"], values["common/charge"])
    cfg = ObjectQuantizerConfig(
        "electrons", scaler.fields, scaler.mean, scaler.std, method="pq", num_stages=3, latent_dim=10
    )
    assert cfg.latent_dim % 3 == 0


def test_a_tokenizer_saved_before_the_third_experiment_keeps_its_token_ids(trained, events_file, tmp_path):
    # FCC-ee (id 2) was appended to the registry's experiments; a tokenizer saved with [ATLAS] [CMS]
    # only must read back with its ids unmoved, and new ones know all three
    import shutil

    tokenizer, out = trained
    assert tokenizer.experiment_tokens == ("[ATLAS]", "[CMS]", "[FCC-ee]")
    old = tmp_path / "old"
    shutil.copytree(out, old)
    layout = json.loads((old / "event_tokenizer.json").read_text())
    layout.pop("experiment_tokens")
    (old / "event_tokenizer.json").write_text(json.dumps(layout))
    legacy = EventTokenizer.from_pretrained(old)
    assert legacy.experiment_tokens == ("[ATLAS]", "[CMS]")
    assert legacy.vocab_size == tokenizer.vocab_size - 1
    batch = read_events(events_file, 0, 50)
    kw = dict(skip_types=("tracks", "taus", "photons"), return_tensors="np")
    new_ids, old_ids = tokenizer(batch, **kw)["input_ids"], legacy(batch, **kw)["input_ids"]
    objects = new_ids > 7
    assert np.array_equal(old_ids[objects], new_ids[objects] - 1)  # object ids sit one lower, as saved
    assert np.array_equal(old_ids[~objects], new_ids[~objects])  # [CLS], [ATLAS], [SEP], [PAD]
    fcc = batch.arrays["common/event/experiment_id"].copy()
    batch.arrays["common/event/experiment_id"] = np.full_like(fcc, schema.EXPERIMENTS["FCC-ee"])
    with pytest.raises(InputError, match="saved with 2 experiment tokens"):
        legacy(batch, **kw)
    assert tokenizer(batch, **kw)["input_ids"][0, 1] == tokenizer.convert_tokens_to_ids("[FCC-ee]")


def test_training_stops_when_the_held_out_loss_stops_improving(events_file):
    """Early stopping takes a fraction of the steps for a held-out loss close to the full run's;
    the identity encoder (k-means) stops when its codes no longer change."""
    from accelerate import Accelerator

    from treasure_hf.tokenization.training import codebook_metrics

    data = collect_objects([events_file], ["jets"], per_event=False, max_objects={"jets": 20}, cap=400, progress=False)[
        "jets"
    ]  # a small sample: its held-out loss levels off early
    train, evaluation = data.split(0.2, 0)
    base = dict(
        method="rvq",
        codebook_size=32,
        num_stages=2,
        latent_dim=6,
        hidden_size=32,
        steps=2000,
        batch_size=512,
        learning_rate=3e-3,
        checkpoint_every=0,
        log_every=500,
    )
    full_args = TokenizerTrainingArguments(**base, patience=0)
    early_args = TokenizerTrainingArguments(**base)
    full, full_history = train_quantizer("jets", train, evaluation, full_args, Accelerator(cpu=True), progress=False)
    early, history = train_quantizer("jets", train, evaluation, early_args, Accelerator(cpu=True), progress=False)
    stop, full_stop = history[-1]["stopping"], full_history[-1]["stopping"]
    assert full_stop["reason"] == "max_steps" and full_stop["steps"] == 2000
    assert stop["reason"] == "plateau" and stop["steps"] <= 0.5 * base["steps"], stop
    loss = codebook_metrics(early, evaluation)["reconstruction_loss"]
    full_loss = codebook_metrics(full, evaluation)["reconstruction_loss"]
    assert loss == pytest.approx(stop["best_eval_reconstruction_loss"], rel=1e-5)  # the best weights are kept
    assert loss < 1.15 * full_loss, (loss, full_loss, stop)  # measured: 0.132 against 0.118 after 2,000 steps

    muons = collect_objects(
        [events_file], ["muons"], per_event=False, max_objects={"muons": 4}, cap=20_000, progress=False
    )["muons"]
    train, evaluation = muons.split(0.2, 0)
    args = TokenizerTrainingArguments(
        method="rvq",
        codebook_size=32,
        num_stages=2,
        encoder_type="identity",
        steps=2000,
        batch_size=100_000,
        checkpoint_every=0,
        eval_every=5,
        patience=0,
    )  # the codes alone decide
    _, history = train_quantizer("muons", train, evaluation, args, Accelerator(cpu=True), progress=False)
    stop = history[-1]["stopping"]
    assert stop["reason"] == "kmeans_converged" and stop["steps"] < 500 and stop["last_code_change"] <= 0.02, stop


def test_a_type_with_few_objects_gets_a_codebook_it_cannot_memorise(events_file):
    """240 training jets against 3 x 256 codes: every code of the first stage holds about one jet,
    the next stages see no residual and held-out jets land on their nearest training jet. Fitted
    to four objects a code (32), the held-out loss falls; ``objects_per_code=0`` keeps 256."""
    from accelerate import Accelerator

    from treasure_hf.tokenization.training import codebook_metrics, fitted_codebook_size

    data = collect_objects([events_file], ["jets"], per_event=False, max_objects={"jets": 20}, cap=300, progress=False)[
        "jets"
    ]
    train, evaluation = data.split(0.2, 0)
    base = dict(method="rvq", codebook_size=256, num_stages=3, latent_dim=6, hidden_size=32, checkpoint_every=0)
    fitted_args = TokenizerTrainingArguments(**base, steps=600)
    fixed_args = TokenizerTrainingArguments(**base, steps=600, objects_per_code=0)
    assert fitted_codebook_size(fitted_args, len(train.features)) == 32  # 240 / 4 = 60 -> 32
    assert fitted_codebook_size(fixed_args, len(train.features)) == 256
    assert fitted_codebook_size(replace(fitted_args, method="fsq"), 10) == 256  # FSQ: its levels decide
    assert fitted_codebook_size(fitted_args, 1) == 16  # never below MIN_CODEBOOK_SIZE
    losses = {}
    for name, args in (("fitted", fitted_args), ("fixed", fixed_args)):
        model, _ = train_quantizer("jets", train, evaluation, args, Accelerator(cpu=True), progress=False)
        assert model.config.codebook_size == (32 if name == "fitted" else 256)
        losses[name] = codebook_metrics(model, evaluation)["reconstruction_loss"]
    assert losses["fitted"] < 0.6 * losses["fixed"], losses  # measured: 0.070 against 0.200
