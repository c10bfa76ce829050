"""Jet constituents and track hits in the tokenizer: features relative to the parent, a quantizer per
sub-object type with codes aligned with the parent's tokens, the continuous model inputs of the
shared contract (``object_index``, ``constituents``, ``hits``) and ``feature_group_columns``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from treasure_hf import read_events
from treasure_hf.cli import main
from treasure_hf.data import schema
from treasure_hf.data.h5 import write_h5
from treasure_hf.data.synthetic import random_events
from treasure_hf.errors import InputError
from treasure_hf.tokenization import EventTokenizer
from treasure_hf.tokenization.features import (
    RELATIVE_FIELDS,
    FeatureScaler,
    field_names,
    from_relative,
    sub_object_values,
    to_relative,
)
from treasure_hf.tokenization.report import sigma68, tokenizer_report
from treasure_hf.tokenization.training import TokenizerTrainingArguments, train_tokenizer

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")

from treasure_hf.data.generate import generator

TYPES = ("electrons", "muons", "jets", "met")
SKIP = ("taus", "photons", "tracks")
STAGES = 3


@pytest.fixture(scope="module")
def ttbar(tmp_path_factory):
    """200 generated ttbar events (jets with up to 50 FastJet constituents each)."""
    path = generator.generate(
        "ttbar", 200, 5, tmp_path_factory.mktemp("ttbar") / "ttbar", shard_size=200, progress=False
    )
    return path


def _args(types, **kw):
    base = dict(
        method="rvq",
        codebook_size=64,
        num_stages=STAGES,
        latent_dim=8,
        hidden_size=64,
        types=types,
        steps=200,
        batch_size=512,
        learning_rate=3e-3,
        checkpoint_every=0,
        log_every=100,
    )
    return TokenizerTrainingArguments(**{**base, **kw})


@pytest.fixture(scope="module")
def with_constituents(ttbar, tmp_path_factory):
    out = tmp_path_factory.mktemp("tok_constituents")
    return train_tokenizer([ttbar], out, _args((*TYPES, "constituents")), progress=False), out


@pytest.fixture(scope="module")
def without_constituents(ttbar, tmp_path_factory):
    out = tmp_path_factory.mktemp("tok_plain")
    return train_tokenizer([ttbar], out, _args(TYPES, steps=20), progress=False), out


def test_relative_features_are_an_exact_inverse_and_wrap_at_pi():
    jet = {"pt": np.array([50.0, 200.0, 31.0]), "eta": np.array([0.3, -2.1, 1.0]), "phi": np.array([3.10, -3.12, 0.5])}
    cons = {
        "common/pt": np.array([5.0, 20.0, 0.6]),
        "common/eta": np.array([0.35, -2.0, 1.1]),
        "common/phi": np.array([-3.10, 3.13, 0.4]),
        "common/charge": np.array([1, -1, 0], np.int8),
        "common/d0": np.array([0.01, -0.2, 0.0], np.float32),
        "common/z0": np.array([0.1, 0.3, 0.0], np.float32),
    }
    rel = to_relative("constituents", cons, jet)
    assert (
        list(rel)
        == field_names("constituents")
        == ["rel/pt", "rel/eta", "rel/phi", "common/charge", "common/d0", "common/z0"]
    )
    assert np.allclose(rel["rel/pt"], [0.1, 0.1, 0.6 / 31.0])
    assert np.allclose(rel["rel/eta"], [0.05, 0.1, 0.1])
    # across the +-pi boundary the azimuthal distance is small, not ~2 pi
    assert np.allclose(rel["rel/phi"], [2 * np.pi - 6.20, 6.25 - 2 * np.pi, -0.1])
    assert np.all(np.abs(rel["rel/phi"]) < np.pi)
    back = from_relative("constituents", rel, jet)
    for k, v in cons.items():
        assert back[k].dtype == np.float32 or k == "common/charge"
        assert np.allclose(back[k], v, atol=1e-6), k
    # the scaler standardises phi_rel as a number (it is small and centred), not as sin/cos
    scaler = FeatureScaler("constituents", field_names("constituents")).fit(rel)
    assert scaler.columns == field_names("constituents")
    assert np.allclose(scaler.inverse(scaler.transform(rel))["rel/phi"], rel["rel/phi"], atol=1e-6)
    assert set(RELATIVE_FIELDS) == set(schema.SUB_OBJECT_TYPES)
    assert all(schema.GROUPS[t].parent for t in RELATIVE_FIELDS)


def test_constituent_quantizer_round_trip_within_resolution(with_constituents, ttbar, tmp_path):
    tokenizer, _ = with_constituents
    assert list(tokenizer.sub_quantizers) == ["constituents"]
    assert tokenizer.id_range("constituents", 2).stop == tokenizer.vocab_size  # after every sequence range
    batch = read_events(ttbar, 0, 100)
    enc = tokenizer(batch, skip_types=SKIP, return_sub_ids=True)
    decoded = tokenizer.decode_events(enc["input_ids"], constituent_ids=enc["constituent_ids"])
    rel, mask = sub_object_values(batch.arrays, "constituents", tokenizer.max_objects["jets"])
    assert np.array_equal(decoded.mask("constituents")[:, : mask.shape[1], : mask.shape[2]], mask)
    dec_values = {
        f"common/{f.name}": decoded[f"common/constituents/{f.name}"][:, : mask.shape[1], : mask.shape[2]][mask]
        for f in schema.fields("common", "constituents")
    }
    jets = {
        f: np.broadcast_to(decoded[f"common/jets/{f}"][:, : mask.shape[1], None], mask.shape)[mask]
        for f in ("pt", "eta", "phi")
    }
    dec_rel = to_relative("constituents", dec_values, jets)
    spread = {k: float(np.std(rel[k])) for k in ("rel/eta", "rel/phi")}
    eta_res = sigma68(dec_rel["rel/eta"] - rel["rel/eta"])
    phi_res = sigma68((dec_rel["rel/phi"] - rel["rel/phi"] + np.pi) % (2 * np.pi) - np.pi)
    pt_res = sigma68(dec_rel["rel/pt"] / rel["rel/pt"] - 1)
    # 18 bits for 6 features after 200 steps: far better than the spread of the constituents in the jet
    assert eta_res < 0.25 * spread["rel/eta"] and phi_res < 0.25 * spread["rel/phi"], (eta_res, phi_res, spread)
    assert pt_res < 0.25, pt_res
    assert np.mean(dec_values["common/charge"] == rel["common/charge"]) > 0.9
    report = tokenizer_report(tokenizer, [ttbar], tmp_path / "report", n_events=200)
    fields = report["types"]["constituents"]["fields"]
    assert {"pt", "eta", "phi", "pt_rel", "eta_rel", "phi_rel", "charge", "d0", "z0"} <= set(fields)
    assert fields["eta_rel"]["resolution"] == "absolute" and fields["pt_rel"]["resolution"] == "relative"
    assert report["types"]["constituents"]["n_objects"] > 10_000
    assert 0 < report["types"]["constituents"]["utilisation"] <= 1
    assert (tmp_path / "report" / "constituents.png").stat().st_size > 10_000


def _one_event() -> dict[str, np.ndarray]:
    """2 electrons, 1 muon, 3 jets (2, 0 and 3 constituents) and MET, padded wider than needed."""
    rng = np.random.default_rng(3)
    a: dict[str, np.ndarray] = {}
    counts = {"electrons": 2, "muons": 1, "jets": 3}
    for t, n in counts.items():
        width = 5
        for f in schema.fields("common", t):
            v = np.zeros((1, width), f.np_dtype)
            fill = {
                "pt": np.sort(rng.uniform(30, 90, n))[::-1],
                "eta": rng.uniform(-2, 2, n),
                "phi": rng.uniform(-3, 3, n),
                "charge": rng.choice([-1, 1], n),
            }
            v[0, :n] = fill.get(f.name, rng.uniform(0, 1, n))
            a[f"common/{t}/{f.name}"] = v
        a[f"common/{t}/mask"] = np.arange(5)[None] < n
        a[f"common/{t}/n"] = np.array([n], np.int32)
    n_cons = np.array([[2, 0, 3, 0, 0]])
    cmask = np.arange(6)[None, None] < n_cons[..., None]
    for f in schema.fields("common", "constituents"):
        v = np.zeros((1, 5, 6), f.np_dtype)
        if f.name == "pt":
            v[cmask] = [20.0, 9.0, 12.0, 7.0, 1.5]
        elif f.name in ("eta", "phi"):
            v[cmask] = np.repeat(a[f"common/jets/{f.name}"][0, :3], n_cons[0, :3]) + [0.1, -0.2, 0.05, 0.0, -0.3]
        elif f.name == "charge":
            v[cmask] = [1, -1, 0, 1, 0]
        else:
            v[cmask] = [0.01, -0.02, 0.0, 0.03, 0.0]
        a[f"common/constituents/{f.name}"] = v
    a["common/constituents/mask"] = cmask
    a["common/constituents/n"] = n_cons.astype(np.int32)
    for f in schema.fields("common", "met"):
        a[f"common/met/{f.name}"] = np.array([40.0 if f.name != "phi" else 1.0], np.float32)
    for f in schema.fields("common", "event"):
        a[f"common/event/{f.name}"] = np.zeros(1, f.np_dtype)
    return a


def test_object_index_and_constituents_on_a_known_layout(with_constituents):
    tokenizer, _ = with_constituents
    event = _one_event()
    enc = tokenizer(event, return_features=True, return_constituents=True, return_sub_ids=True, return_tensors="pt")
    ids = enc["input_ids"][0]
    # [CLS] [ATLAS] e1 e1 e1 e2 e2 e2 [SEP] mu1 x3 [SEP] j1 x3 j2 x3 j3 x3 [SEP] MET x3
    expected = [-1, -1, 0, 0, 0, 1, 1, 1, -1, 2, 2, 2, -1, 3, 3, 3, 4, 4, 4, 5, 5, 5, -1, 6, 6, 6]
    assert enc["object_index"].dtype == torch.long and enc["object_index"][0].tolist() == expected
    assert ids[[0, 8, 12, 22]].tolist() == [tokenizer.cls_token_id] + [tokenizer.sep_token_id] * 3
    mask = enc["constituents_mask"][0]
    assert enc["constituents"].shape == (1, len(expected), 3, 6)  # cut to the longest jet's 3 constituents
    assert mask.sum(-1).tolist() == [0] * 13 + [2] * 3 + [0] * 3 + [3] * 3 + [0] * 4
    rel, _ = sub_object_values(event, "constituents")
    x = torch.from_numpy(tokenizer.sub_scalers["constituents"].transform(rel))
    for tok in range(13, 16):
        assert torch.allclose(enc["constituents"][0, tok, :2], x[:2])
        assert torch.equal(enc["constituent_ids"][0, tok], enc["constituent_ids"][0, 13])
    for tok in range(19, 22):
        assert torch.allclose(enc["constituents"][0, tok, :3], x[2:])
    assert not enc["constituents"][0, :13].any() and not enc["constituent_ids"][0, 22:].any()
    # the decoded constituents sit around the decoded jets, in the right slots
    dec = tokenizer.decode_events(enc["input_ids"], constituent_ids=enc["constituent_ids"])
    assert dec["common/constituents/n"][0, :3].tolist() == [2, 0, 3]
    d_eta = dec["common/constituents/eta"][0, 2, :3] - dec["common/jets/eta"][0, 2]
    assert np.all(np.abs(d_eta) < 0.6)


def test_constituents_are_aligned_with_their_jets_tokens(with_constituents, ttbar):
    tokenizer, _ = with_constituents
    batch = read_events(ttbar, 100, 160)
    enc = tokenizer(
        batch, skip_types=SKIP, return_features=True, return_constituents=True, return_sub_ids=True, return_tensors="np"
    )
    n_jets = batch.mask("jets")[:, : tokenizer.max_objects["jets"]].sum(1)
    jet_tokens = enc["token_type_ids"] == schema.TOKEN_TYPE_IDS["jets"]
    assert np.array_equal(jet_tokens.sum(1), STAGES * n_jets)
    n_cons = np.minimum(batch.counts("constituents"), 50)
    for i in range(len(n_jets)):
        first = np.nonzero(jet_tokens[i])[0][::STAGES]
        objects = enc["object_index"][i, first]
        assert np.array_equal(np.diff(objects), np.ones(len(first) - 1)) if len(first) > 1 else True
        for j, pos in enumerate(first):
            assert enc["constituents_mask"][i, pos].sum() == n_cons[i, j]
            for s in range(STAGES):  # every token of the jet carries its constituents
                assert np.array_equal(enc["constituents"][i, pos + s], enc["constituents"][i, pos])
                assert np.array_equal(enc["constituent_ids"][i, pos + s], enc["constituent_ids"][i, pos])
    real = enc["constituent_ids"][enc["constituents_mask"]]
    for s in range(STAGES):
        assert np.all(
            (real[:, s] >= tokenizer.id_range("constituents", s).start)
            & (real[:, s] < tokenizer.id_range("constituents", s).stop)
        )
    assert not enc["constituents_mask"][~jet_tokens].any()
    assert enc["features"].shape[:2] == enc["kinematics"].shape[:2] == enc["object_index"].shape


def test_hits_are_aligned_with_their_tracks_tokens(tmp_path):
    path = tmp_path / "hits.h5"
    write_h5(path, random_events(300, 4, sub_groups=("hits",), multiplicity={"tracks": 5.0, "hits": 6.0}).to_padded())
    args = _args(("tracks", "hits"), codebook_size=16, num_stages=1, method="vq", steps=20)
    tokenizer = train_tokenizer([path], tmp_path / "tok", args, progress=False)
    batch = read_events(path, 0, 20)
    enc = tokenizer(
        batch,
        skip_types=("electrons", "muons", "jets", "taus", "photons"),
        return_features=True,
        return_constituents=True,
        return_sub_ids=True,
    )
    assert "constituents" not in enc and enc["hits"].shape[-1] == len(field_names("hits"))
    tracks = enc["token_type_ids"] == schema.TOKEN_TYPE_IDS["tracks"]
    hits_per_token = enc["hits_mask"].sum(-1)
    n_hits = np.minimum(batch.counts("hits")[:, : tokenizer.max_objects["tracks"]], 30)
    for i in range(20):
        assert np.array_equal(hits_per_token[i][tracks[i]], n_hits[i][batch.mask("tracks")[i, :30]])
    assert np.array_equal(enc["hit_ids"][..., 0] > 0, enc["hits_mask"])
    decoded = tokenizer.decode_events(enc["input_ids"], hit_ids=enc["hit_ids"])
    kept = batch.mask("tracks")[:, : tokenizer.max_objects["tracks"]]
    assert np.array_equal(decoded["common/hits/n"][:, : kept.shape[1]][kept], n_hits[kept])


def test_feature_group_columns_follow_the_registry(with_constituents):
    tokenizer, _ = with_constituents
    groups = tokenizer.feature_group_columns()
    assert set(groups) == {*TYPES, "constituents"}
    for t, by_group in groups.items():
        scaler = tokenizer.quantizers[t].scaler if t in tokenizer.quantizers else tokenizer.sub_scalers[t]
        cols = scaler.columns
        assert sorted(i for idx in by_group.values() for i in idx) == list(range(len(cols)))
        for g, idx in by_group.items():
            for i in idx:
                fname = cols[i].split(":")[0].split("/")[1]
                assert schema.field_of(f"common/{t}/{fname}").feature_group == g, (t, cols[i], g)
    assert groups["jets"] == {"kinematics": [0, 1, 2, 3, 4], "substructure": [5]}  # pt eta sin cos mass | n_trk
    assert groups["electrons"]["id"] == [5]  # trk_iso03
    assert groups["constituents"] == {"kinematics": [0, 1, 2, 3], "impact": [4, 5]}


def test_save_load_identity_with_a_constituent_quantizer(with_constituents, ttbar, tmp_path):
    from transformers import AutoTokenizer

    tokenizer, out = with_constituents
    batch = read_events(ttbar, 0, 50)
    kw = dict(skip_types=SKIP, return_features=True, return_constituents=True, return_sub_ids=True, return_tensors="np")
    reference = tokenizer(batch, **kw)
    loaded = AutoTokenizer.from_pretrained(out)
    assert type(loaded) is EventTokenizer and list(loaded.sub_quantizers) == ["constituents"]
    again = loaded(batch, **kw)
    assert set(again) == set(reference)
    for k in reference:
        assert np.array_equal(again[k], reference[k]), k
    loaded.save_pretrained(tmp_path / "again")
    files = {p.name for p in (tmp_path / "again").iterdir()}
    assert not any(name.endswith((".bin", ".pkl", ".pt")) for name in files)
    layout = json.loads((tmp_path / "again" / "event_tokenizer.json").read_text())
    assert set(layout["sub_quantizers"]) == {"constituents"} and "constituents" not in layout["quantizers"]
    assert np.array_equal(
        EventTokenizer.from_pretrained(tmp_path / "again")(batch, **kw)["constituent_ids"], reference["constituent_ids"]
    )
    text = loaded.convert_ids_to_tokens(reference["constituent_ids"][reference["constituents_mask"]][0].tolist())
    assert [t.split(":")[:2] for t in text] == [["constituents", str(s)] for s in range(STAGES)]


def test_constituent_scaler_is_saved_without_a_constituent_quantizer(without_constituents, ttbar, tmp_path):
    tokenizer, out = without_constituents
    assert not tokenizer.sub_quantizers and set(tokenizer.sub_scalers) == {"constituents"}
    layout = json.loads((out / "event_tokenizer.json").read_text())
    assert "sub_quantizers" not in layout and set(layout["sub_scalers"]) == {"constituents"}
    batch = read_events(ttbar, 0, 30)
    enc = EventTokenizer.from_pretrained(out)(batch, skip_types=SKIP, return_features=True, return_constituents=True)
    assert enc["constituents"].shape[-1] == 6 and enc["constituents_mask"].any()
    real = enc["constituents"][enc["constituents_mask"]]
    assert abs(real[:, 1].mean()) < 0.5 and 0.5 < real[:, 1].std() < 2  # eta_rel standardised on the training data
    # a tokenizer that never saw constituents refuses to guess a standardisation, then learns one
    bare = EventTokenizer.from_quantizers(tokenizer.quantizers, tokenizer.max_objects, tokenizer.ignored_types)
    with pytest.raises(ValueError, match="fit_sub_scalers"):
        bare(batch, skip_types=SKIP, return_constituents=True)
    bare.fit_sub_scalers(read_events(ttbar))
    assert np.allclose(
        bare.sub_scalers["constituents"].mean, tokenizer.sub_scalers["constituents"].mean, rtol=0.05, atol=0.05
    )
    with pytest.raises(ValueError, match="constituents or hits quantizer"):
        bare(batch, skip_types=SKIP, return_sub_ids=True)


def test_sub_objects_requested_but_absent_name_the_key(with_constituents, ttbar, capsys):
    tokenizer, _ = with_constituents
    batch = read_events(ttbar, 0, 10)
    no_cons = {k: v for k, v in batch.arrays.items() if "/constituents/" not in k}
    with pytest.raises(InputError, match="common/constituents/mask"):
        tokenizer(no_cons, skip_types=SKIP, return_features=True, return_constituents=True)
    with pytest.raises(InputError, match="common/constituents/mask"):
        tokenizer(no_cons, skip_types=SKIP, return_sub_ids=True)
    no_eta = {k: v for k, v in batch.arrays.items() if k != "common/constituents/eta"}
    with pytest.raises(InputError, match="common/constituents/eta"):
        tokenizer(no_eta, skip_types=SKIP, return_constituents=True)
    with pytest.raises(ValueError, match="need padding"):
        tokenizer(batch, skip_types=SKIP, return_constituents=True, padding=False)
    assert set(tokenizer(no_cons, skip_types=SKIP)) == {"input_ids", "token_type_ids", "attention_mask"}
    assert main(["train-tokenizer", "--data", str(ttbar), "--types", "muons,constituents", "--out", "unused"]) == 2
    assert "need their parent jets" in capsys.readouterr().err


def test_ragged_rows_with_constituents_tokenize_like_the_padded_batch(with_constituents, ttbar):
    tokenizer, _ = with_constituents
    batch = read_events(ttbar, 0, 6)
    rows = []
    for i in range(6):
        jets, cons = batch.mask("jets")[i], batch.mask("constituents")[i]
        row = {
            g: {f.name: batch[f"common/{g}/{f.name}"][i][batch.mask(g)[i]].tolist() for f in schema.fields("common", g)}
            for g in ("electrons", "muons", "jets")
        }
        row["constituents"] = {
            f.name: [batch[f"common/constituents/{f.name}"][i, j][cons[j]].tolist() for j in np.nonzero(jets)[0]]
            for f in schema.fields("common", "constituents")
        }
        row["met"] = {f.name: batch[f"common/met/{f.name}"][i] for f in schema.fields("common", "met")}
        row["event"] = {f.name: batch[f"common/event/{f.name}"][i] for f in schema.fields("common", "event")}
        rows.append({"common": row})
    kw = dict(return_features=True, return_constituents=True, return_sub_ids=True, return_tensors="np")
    a, b = tokenizer(rows, **kw), tokenizer(batch, skip_types=SKIP, **kw)
    for k in b:
        assert np.array_equal(a[k], b[k]), k
