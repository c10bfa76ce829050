"""Kinematics inside the event transformers: the ParT pair features of a Z decay, the exact
four-vector sums of the combination readout, no leak of masked objects, the default model left
as it was, and a pair mass that only the kinematic model can learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from treasure_hf.data import schema
from treasure_hf.metrics import roc_auc
from treasure_hf.modeling import (
    EventTransformerConfig,
    EventTransformerForMaskedEventModeling,
    EventTransformerForSequenceClassification,
)
from treasure_hf.modeling.modeling_event_transformer import (
    PAIR_MASS_OCTAVES,
    FourVectorCombinations,
    ObjectLayout,
    PairFeatureBias,
    object_type_sets,
)

T = schema.TOKEN_TYPE_IDS
M_Z = 91.1876
VOCAB = 64


def config(**kwargs) -> EventTransformerConfig:
    params = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        max_position_embeddings=64,
        num_labels=1,
        pair_features="kinematic",
        kinematic_combinations=2,
    )
    params.update(kwargs)
    return EventTransformerConfig(**params)


def event(objects: list[tuple[str, float, float, float, float, float]]) -> dict[str, torch.Tensor]:
    """One event ``[CLS] obj... [SEP]``, one token per object: (type, pT, eta, phi, mass, charge)."""
    kin = (
        [[0.0] * 6]
        + [[pt, eta, phi, math.sqrt((pt * math.cosh(eta)) ** 2 + m**2), m, q] for _, pt, eta, phi, m, q in objects]
        + [[0.0] * 6]
    )
    n = len(objects)
    return {
        "input_ids": torch.tensor([[1] + [10 + i for i in range(n)] + [2]]),
        "token_type_ids": torch.tensor([[0] + [T[t] for t, *_ in objects] + [0]]),
        "attention_mask": torch.ones(1, n + 2, dtype=torch.long),
        "object_index": torch.tensor([[-1] + list(range(n)) + [-1]]),
        "kinematics": torch.tensor([kin], dtype=torch.float32),
    }


def four_vector(pt: float, eta: float, phi: float, m: float) -> np.ndarray:
    return np.array(
        [math.sqrt((pt * math.cosh(eta)) ** 2 + m**2), pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(eta)]
    )


def mass(p: np.ndarray) -> float:
    return float(math.sqrt(max(p[0] ** 2 - p[1] ** 2 - p[2] ** 2 - p[3] ** 2, 0.0)))


def test_pair_features_of_a_z_decay_into_two_muons():
    # Z at rest: back-to-back muons of pT = mZ/2 at eta 0, opposite charges; a jet far away
    ev = event(
        [
            ("muons", M_Z / 2, 0.0, 0.3, 0.10566, -1.0),
            ("muons", M_Z / 2, 0.0, 0.3 - math.pi, 0.10566, 1.0),
            ("jets", 30.0, 1.2, 2.0, 8.0, 0.0),
        ]
    )
    bias = PairFeatureBias(config())
    feats, both = bias.pair_features(ev["kinematics"], ev["token_type_ids"])
    assert feats.shape == (1, 5, 5, PairFeatureBias.NUM_FEATURES)
    ln_dr, ln_kt, ln_z, ln_m2, qq, same = feats[0, 1, 2, :6]
    log_m = 0.5 * float(ln_m2)  # Fourier features of ln m follow
    assert float(feats[0, 1, 2, 6]) == pytest.approx(math.sin(math.pi * log_m), abs=1e-4)
    assert float(feats[0, 1, 2, 6 + PAIR_MASS_OCTAVES]) == pytest.approx(math.cos(math.pi * log_m), abs=1e-4)
    assert math.exp(ln_m2 / 2) == pytest.approx(M_Z, rel=1e-4)  # the Z peak
    assert math.exp(ln_dr) == pytest.approx(math.pi, rel=1e-5)
    assert math.exp(ln_z) == pytest.approx(0.5, rel=1e-5)
    assert math.exp(ln_kt) == pytest.approx(M_Z / 2 * math.pi, rel=1e-4)
    assert qq == -1 and same == 1
    # muon + jet: the invariant mass of the two four-vectors, dR in rapidity and azimuth
    mu, jet = four_vector(M_Z / 2, 0.0, 0.3, 0.10566), four_vector(30.0, 1.2, 2.0, 8.0)
    assert math.exp(feats[0, 1, 3, 3] / 2) == pytest.approx(mass(mu + jet), rel=1e-4)
    y_jet = 0.5 * math.log((jet[0] + jet[3]) / (jet[0] - jet[3]))
    assert math.exp(feats[0, 1, 3, 0]) == pytest.approx(math.hypot(y_jet, 1.7), rel=1e-4)
    assert feats[0, 1, 3, 4] == 0 and feats[0, 1, 3, 5] == 0
    assert torch.allclose(feats[0, 1, 2], feats[0, 2, 1], atol=1e-6)  # symmetric
    # no bias for specials, for a token with itself, or within one object
    out = bias(ev["kinematics"], ev["token_type_ids"], ObjectLayout.from_object_index(ev["object_index"]))
    assert out.shape == (1, 2, 5, 5)
    assert torch.all(out[:, :, 0] == 0) and torch.all(out[:, :, :, -1] == 0)
    assert torch.all(torch.diagonal(out, dim1=2, dim2=3) == 0)
    assert torch.any(out[0, :, 1, 2] != 0)
    assert not both[0, 0].any()


def test_type_sums_give_the_exact_four_lepton_mass():
    rng = np.random.default_rng(1)
    leptons = [
        (
            "electrons" if i < 2 else "muons",
            float(rng.uniform(10, 60)),
            float(rng.uniform(-2, 2)),
            float(rng.uniform(-3, 3)),
            0.0,
            (-1.0) ** i,
        )
        for i in range(4)
    ]
    ev = event(leptons + [("jets", 80.0, 0.5, 1.0, 10.0, 0.0)])
    m4l = mass(sum(four_vector(pt, eta, phi, m) for _, pt, eta, phi, m, _ in leptons))
    cfg = config(token_id_ranges={f"{T[t]}:0": [10, 20] for t in ("electrons", "muons", "jets")})
    comb = FourVectorCombinations(cfg)
    sets = object_type_sets(cfg)
    assert (T["electrons"], T["muons"]) in sets and (T["jets"],) in sets and len(sets) == 6
    counted = ev["object_index"] >= 0
    with torch.no_grad():
        comb.weights.bias.zero_()
        feats = comb.combination_features(torch.zeros(1, 7, 32), ev["kinematics"], ev["token_type_ids"], counted)
    col = cfg.kinematic_combinations + sets.index((T["electrons"], T["muons"]))
    assert math.expm1(float(feats[0, col, 0])) == pytest.approx(m4l, rel=1e-5)
    jets = cfg.kinematic_combinations + sets.index((T["jets"],))
    assert math.expm1(float(feats[0, jets, 0])) == pytest.approx(10.0, rel=1e-4)  # one jet: its own mass
    # learned weights reach exactly 0 and 1
    with torch.no_grad():
        w = comb.combination_weights(torch.zeros(1, 7, 32), ev["token_type_ids"], counted)
        comb.weights.bias.fill_(5.0)
        w_on = comb.combination_weights(torch.zeros(1, 7, 32), ev["token_type_ids"], counted)
    assert torch.all(w_on[0, 1:6, :2] == 1) and torch.all(w_on[0, [0, 6]] == 0)
    assert torch.allclose(w[0, 1:6, :2], torch.full((5, 2), 0.5))


def test_the_default_model_is_the_plain_one():
    default = EventTransformerConfig()
    assert default.pair_features == "none" and default.kinematic_combinations == 0
    torch.manual_seed(0)
    plain = EventTransformerForSequenceClassification(config(pair_features="none", kinematic_combinations=0)).eval()
    assert not any("pair_bias" in k or "combinations" in k for k in plain.state_dict())
    rich = EventTransformerForSequenceClassification(config()).eval()
    rich.load_state_dict(plain.state_dict(), strict=False)
    with torch.no_grad():  # zero output layers: the kinematic parts add nothing
        rich.transformer.pair_bias.mlp[-1].weight.zero_()
        rich.transformer.pair_bias.mlp[-1].bias.zero_()
        rich.transformer.pooler.combinations.projection[-1].weight.zero_()
        rich.transformer.pooler.combinations.projection[-1].bias.zero_()
        ev = event([("muons", 40.0, 0.1, 0.2, 0.1, 1.0), ("muons", 30.0, -0.4, 2.2, 0.1, -1.0)])
        assert torch.allclose(plain(**ev).logits, rich(**ev).logits, atol=1e-6)
        with pytest.raises(ValueError, match="pair_features needs `kinematics`"):
            rich(**{k: v for k, v in ev.items() if k != "kinematics"})


def test_masked_objects_leak_no_kinematics():
    torch.manual_seed(0)
    model = EventTransformerForMaskedEventModeling(config()).eval()
    ev = event(
        [
            ("muons", 40.0, 0.1, 0.2, 0.1, 1.0),
            ("muons", 30.0, -0.4, 2.2, 0.1, -1.0),
            ("electrons", 25.0, 1.0, -1.0, 0.0, 1.0),
        ]
    )
    ev["input_ids"][0, 2] = model.config.mask_token_id
    other = {**ev, "kinematics": ev["kinematics"].clone()}
    other["kinematics"][0, 2, :3] = torch.tensor([90.0, -2.0, 0.5])
    with torch.no_grad():
        assert torch.equal(model(**ev).logits, model(**other).logits)
        other["kinematics"][0, 3, 0] = 60.0  # a visible object's kinematics do matter
        assert not torch.equal(model(**ev).logits, model(**other).logits)


def dimuon_events(n: int, seed: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Two muons with the same single-muon pT, eta, phi and charge distributions in both classes;
    signal has m(mumu) ~ N(mZ, 2 GeV), background m(mumu) uniform in 70-110 GeV. Token ids carry
    nothing (one id per position): only the pair of four-momenta tells the classes apart."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    kin = np.zeros((n, 4, 6), np.float32)
    for i in range(n):
        while True:
            pt1, pt2 = rng.uniform(40, 60, 2)
            eta1, eta2 = rng.uniform(-1, 1, 2)
            m = rng.normal(M_Z, 2.0) if y[i] else rng.uniform(70, 110)
            cos_dphi = math.cosh(eta1 - eta2) - m**2 / (2 * pt1 * pt2)
            if abs(cos_dphi) <= 1:
                break
        phi1 = rng.uniform(-math.pi, math.pi)
        phi2 = math.remainder(phi1 + math.acos(cos_dphi) * rng.choice([-1, 1]), 2 * math.pi)
        for j, (pt, eta, phi, q) in enumerate(((pt1, eta1, phi1, 1.0), (pt2, eta2, phi2, -1.0))):
            kin[i, j + 1] = [pt, eta, phi, pt * math.cosh(eta), 0.0, q]
    batch = {
        "input_ids": torch.tensor([[1, 10, 11, 2]]).repeat(n, 1),
        "token_type_ids": torch.tensor([[0, T["muons"], T["muons"], 0]]).repeat(n, 1),
        "attention_mask": torch.ones(n, 4, dtype=torch.long),
        "object_index": torch.tensor([[-1, 0, 1, -1]]).repeat(n, 1),
        "kinematics": torch.from_numpy(kin),
    }
    return batch, torch.from_numpy(y)


@pytest.mark.parametrize(
    "kinematic",
    [
        dict(pair_features="kinematic", kinematic_combinations=2),
        dict(pair_features="none", kinematic_combinations=2),
        dict(pair_features="none", kinematic_combinations=0),
    ],
)
def test_only_the_kinematic_models_learn_the_pair_mass(kinematic):
    train, y_train = dimuon_events(800, 0)
    test, y_test = dimuon_events(400, 1)
    torch.manual_seed(0)
    model = EventTransformerForSequenceClassification(config(**kinematic))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(150):
        idx = torch.randint(0, 800, (128,), generator=torch.Generator().manual_seed(step))
        loss = model(**{k: v[idx] for k, v in train.items()}, labels=y_train[idx]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        auc = roc_auc(y_test.numpy(), model.eval()(**test).logits[:, 0].numpy())
    if kinematic == dict(pair_features="none", kinematic_combinations=0):
        assert abs(auc - 0.5) < 0.08  # the plain token model sees nothing: the check can fail
    else:
        assert auc > 0.85, auc
