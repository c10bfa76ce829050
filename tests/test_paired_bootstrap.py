"""The paired bootstrap of two classifiers on one test set (benchmarks/ee_zh.py compares each row
with the BDT this way)."""

from __future__ import annotations

import numpy as np

from treasure_hf import metrics


def test_the_same_scores_differ_by_exactly_nothing_and_a_better_classifier_by_a_resolved_amount():
    rng = np.random.default_rng(3)
    y = np.r_[np.ones(400), np.zeros(400)]
    good = y + rng.normal(size=800)  # separation 1 sigma: AUC 0.76
    poor = 0.3 * y + rng.normal(size=800)  # 0.3 sigma: AUC 0.58
    assert metrics.paired_bootstrap_difference(metrics.roc_auc, y, good, good) == (0.0, 0.0, 0.0)
    diff, low, high = metrics.paired_bootstrap_difference(metrics.roc_auc, y, good, poor, n_bootstrap=300)
    assert diff == metrics.roc_auc(y, good) - metrics.roc_auc(y, poor) and 0.1 < low < diff < high
    # pairing shares the test set's fluctuations: the interval is narrower than the two separate ones combined
    _, lo_g, hi_g = metrics.bootstrap_ci(metrics.roc_auc, y, good, n_bootstrap=300)
    _, lo_p, hi_p = metrics.bootstrap_ci(metrics.roc_auc, y, poor, n_bootstrap=300)
    assert high - low < np.hypot(hi_g - lo_g, hi_p - lo_p)
