"""The FCC-ee presets at 240 GeV through the IDEA-like detector: recoil-mass peaks, the missing
four-momentum against the beams, track hits, and files that validate."""

from __future__ import annotations

import numpy as np
import pytest

from treasure_hf import metrics
from treasure_hf.data import ee, schema, validate
from treasure_hf.data.generate import processes
from treasure_hf.data.generate.detector import FCCEE_IDEA
from treasure_hf.data.generate.generator import ShardTask, generate, generate_shard
from treasure_hf.data.io import open_events
from treasure_hf.errors import InputError

Z_TO_LL = ("23:onMode = off", "23:onIfAny = 11 13")
"""The Z of ZH (both Zs of ZZ) forced to e+e- or mu+mu-: the recoil needs a dilepton."""


def _events(process: str, n: int, seed: int, extra: tuple[str, ...] = ()):
    return generate_shard(ShardTask(process, 0, n, 0, seed, detector="idea", extra=extra)).to_padded()


def _core(x: np.ndarray, centre: float, window: float) -> tuple[float, float]:
    """Mean and width of the Gaussian core of ``x`` near ``centre`` (iterated within +-1 sigma)."""
    return metrics.gaussian_core(x[np.abs(x - centre) < window], k=1.0)


@pytest.mark.parametrize("process, mass, seed, max_width", [("ee_zh", 125.0, 3, 2.0), ("ee_zz", ee.Z_MASS_GEV, 4, 4.5)])
def test_the_recoil_against_the_z_peaks_at_the_higgs_or_z_mass_within_its_resolution(process, mass, seed, max_width):
    # the recoil of the Z -> ll candidate against the nominal initial state (0, 0, 0, 240 GeV), as the
    # FCC-ee analyses compute it: ISR and the 0.165% beam energy spread give the high-side tail
    batch = _events(process, 1500, seed, Z_TO_LL)
    out = ee.z_recoil(batch.arrays, ee.head_on(240.0)[0])
    found = np.isfinite(out["recoil"])
    assert found.mean() > 0.9
    peak, width = _core(out["recoil"][found], mass, 15.0)
    assert abs(peak - mass) < width < max_width, (peak, width)
    zpeak, zwidth = _core(out["mll"][found], ee.Z_MASS_GEV, 10.0)
    assert abs(zpeak - ee.Z_MASS_GEV) < zwidth < 3.0, (zpeak, zwidth)


def test_the_missing_four_momentum_is_the_beams_minus_what_the_detector_measures():
    batch = _events("ee_zh", 300, 5)
    sqrt_s = batch["edm4hep/event/sqrt_s"]
    # the beam energy spread: 0.165% of 120 GeV per beam (the FCC-ee Pythia cards) -> 0.117% of sqrt(s)
    assert abs(np.median(sqrt_s) - 240.0) < 0.05 and 0.1 < np.std(sqrt_s) < 0.5
    miss_pt = np.hypot(batch["edm4hep/event/missing_px"], batch["edm4hep/event/missing_py"])
    np.testing.assert_allclose(batch["common/met/pt"], miss_pt, rtol=1e-4, atol=1e-4)
    # H -> bb, WW*, ... with neutrinos lost: the missing energy is positive and mostly a few GeV
    assert np.median(batch["edm4hep/event/missing_e"]) > 0
    assert np.all(batch["common/event/experiment_id"] == schema.EXPERIMENTS["FCC-ee"])


def test_tracks_carry_the_hits_of_the_idea_layers_inside_out():
    batch = _events("ee_ww", 200, 6)
    real = batch["common/tracks/mask"]
    n = batch["common/hits/n"][real]
    assert np.array_equal(n, batch["edm4hep/tracks/n_hits"][real])
    eta = batch["common/tracks/eta"][real]
    r = batch["edm4hep/hits/r"][real]
    central = (np.abs(eta) < 0.5) & (batch["common/tracks/pt"][real] > 1.0)
    from_the_beam = r[:, 0] == FCCEE_IDEA.hit_layers[0][0]  # not born inside the tracker (K0S, Lambda decays)
    assert np.all(n[central & from_the_beam] == len(FCCEE_IDEA.hit_layers))  # 5 vertex, 14 chamber, 2 wrapper
    assert np.mean(n[central] == len(FCCEE_IDEA.hit_layers)) > 0.9
    assert np.all(n <= schema.GROUPS["hits"].max_objects)
    mask = batch["common/hits/mask"][real]
    assert np.all(np.diff(np.where(mask, r, 1e30), axis=1)[mask[:, 1:]] > 0)  # inside out
    assert np.array_equal(batch["common/hits/layer"][real][mask], np.nonzero(mask)[1])
    t = batch["common/hits/time"][real]
    assert np.all(np.diff(np.where(mask, t, 1e30), axis=1)[mask[:, 1:]] > 0)  # later, further out
    outer = mask & (r > 300.0) & from_the_beam[:, None]
    beta = np.hypot(r, batch["edm4hep/hits/z"][real])[outer] / (299.792458 * t[outer])
    assert 0.95 < np.median(beta) < 1.0  # ns along helices of particles slightly slower than light


def test_a_generated_ee_sample_validates_and_records_its_initial_state(tmp_path):
    out = generate(
        "ee_qq", 150, 7, tmp_path / "qq", detector="idea", h5=tmp_path / "qq.h5", progress=False, shard_size=100
    )
    assert validate.validate(out) == [] and validate.validate(tmp_path / "qq.h5") == []
    source = open_events(tmp_path / "qq.h5")
    try:
        meta = source.metadata
    finally:
        source.close()
    assert meta["experiment"] == "FCC-ee" and meta["layers"] == ["edm4hep", "truth"]
    assert meta["initial_state"]["sqrt_s_gev"] == 240.0 and meta["magnetic_field"]["tesla"] == 2.0
    assert meta["generator"]["components"]["ee_qq"]["settings"][:3] == [
        "Beams:idA = 11",
        "Beams:idB = -11",
        "Beams:eCM = 240.",
    ]
    assert "edm4hep/electrons/pid_likelihood" in meta["missing_fields"]


def test_presets_and_detectors_of_different_colliders_do_not_mix(tmp_path):
    with pytest.raises(InputError, match="ee_zh is a fcc-ee process.*use idea"):
        generate("ee_zh", 10, 1, tmp_path / "a", detector="atlas", progress=False)
    with pytest.raises(InputError, match="hzz4l is a lhc process.*use atlas or cms"):
        generate("hzz4l", 10, 1, tmp_path / "b", detector="idea", progress=False)
    assert {p.collider for p in processes.PROCESSES.values() if p.name.startswith("ee_")} == {"fcc-ee"}
