"""Metrics in numpy (no scikit-learn at run time). Classifiers: ROC curve, ROC AUC, background
rejection at a signal efficiency, and bootstrap confidence intervals; event weights (MC weights,
possibly negative) are supported throughout; ties in the scores count one half. Resolutions:
``sigma68`` and the Gaussian-core width of a peak."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def _prepare(
    labels: np.ndarray, scores: np.ndarray, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(labels).reshape(-1)
    s = np.asarray(scores, np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f"labels ({y.size}) and scores ({s.size}) differ in length")
    if not np.all(np.isin(y, (0, 1))):
        raise ValueError("labels must be 0 (background) or 1 (signal)")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores hold NaN or inf")
    w = np.ones_like(s) if weights is None else np.asarray(weights, np.float64).reshape(-1)
    if w.shape != s.shape:
        raise ValueError(f"weights ({w.size}) and scores ({s.size}) differ in length")
    return y.astype(bool), s, w


def roc_auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Area under the ROC curve: the (weighted) probability that a signal event scores above a
    background event, ties counting one half. ``labels`` 1 signal, 0 background."""
    y, s, w = _prepare(labels, scores, weights)
    w_sig, w_bkg = w[y].sum(), w[~y].sum()
    if w_sig == 0 or w_bkg == 0:
        raise ValueError("ROC AUC needs both signal and background events")
    _, inverse = np.unique(s, return_inverse=True)
    sig = np.bincount(inverse, weights=w * y)
    bkg = np.bincount(inverse, weights=w * ~y)
    bkg_below = np.cumsum(bkg) - bkg
    return float(np.sum(sig * (bkg_below + 0.5 * bkg)) / (w_sig * w_bkg))


def roc_curve(
    labels: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(background efficiency, signal efficiency, thresholds)`` for every distinct score, from
    the highest threshold (inf: nothing selected) down, as scikit-learn's ``roc_curve``
    (without dropping intermediate points): an event passes when score >= threshold."""
    y, s, w = _prepare(labels, scores, weights)
    w_sig, w_bkg = w[y].sum(), w[~y].sum()
    if w_sig == 0 or w_bkg == 0:
        raise ValueError("a ROC curve needs both signal and background events")
    thresholds, inverse = np.unique(-s, return_inverse=True)
    tpr = np.cumsum(np.bincount(inverse, weights=w * y)) / w_sig
    fpr = np.cumsum(np.bincount(inverse, weights=w * ~y)) / w_bkg
    return np.r_[0.0, fpr], np.r_[0.0, tpr], np.r_[np.inf, -thresholds]


def rejection_at_efficiency(
    labels: np.ndarray, scores: np.ndarray, signal_efficiency: float, weights: np.ndarray | None = None
) -> float:
    """Background rejection 1 / eps_bkg at the loosest threshold whose signal efficiency reaches
    ``signal_efficiency`` (inf where no background passes)."""
    fpr, tpr, _ = roc_curve(labels, scores, weights)
    i = int(np.searchsorted(tpr, signal_efficiency, side="left"))
    eps_bkg = fpr[min(i, len(fpr) - 1)]
    return float(np.inf) if eps_bkg <= 0 else float(1.0 / eps_bkg)


def bootstrap_ci(
    metric: Callable[..., float],
    labels: np.ndarray,
    scores: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    n_bootstrap: int = 200,
    confidence: float = 0.68,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``(value, low, high)``: ``metric(labels, scores, weights)`` on the full sample and the
    central ``confidence`` interval of its values over ``n_bootstrap`` resamplings of the
    events with replacement (resamples lacking a class are drawn again)."""
    y = np.asarray(labels).reshape(-1)
    s = np.asarray(scores).reshape(-1)
    w = None if weights is None else np.asarray(weights).reshape(-1)
    value = metric(y, s, w)
    values = [metric(y[i], s[i], None if w is None else w[i]) for i in _resamples(y, n_bootstrap, seed)]
    low, high = np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(value), float(low), float(high)


def _resamples(labels: np.ndarray, n_bootstrap: int, seed: int):
    """``n_bootstrap`` index arrays drawing the events with replacement, each holding both classes."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_bootstrap:
        i = rng.integers(0, len(labels), len(labels))
        if labels[i].min() == labels[i].max():
            continue
        done += 1
        yield i


def class_scores(logits: np.ndarray) -> np.ndarray:
    """(N, C) logits -> (N, C) probabilities (softmax), or (N, 1) -> sigmoid for one logit."""
    logits = np.asarray(logits, np.float64)
    if logits.ndim == 1 or logits.shape[-1] == 1:
        p = 1.0 / (1.0 + np.exp(-logits.reshape(-1)))
        return np.stack([1 - p, p], 1)
    z = np.exp(logits - logits.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def sigma68(x: np.ndarray) -> float:
    """Half the width of the central 68.27% interval: a Gaussian's sigma, robust to tails."""
    if len(x) == 0:
        return float("nan")
    lo, hi = np.percentile(x, [15.865, 84.135])
    return float(hi - lo) / 2


def gaussian_core(x: np.ndarray, k: float = 1.5, iterations: int = 5) -> tuple[float, float]:
    """(centre, sigma) of the Gaussian core of ``x``: the mean and standard deviation of the values
    within +-k sigma of the centre, iterated from the median and sigma68 and corrected for the
    truncation of a Gaussian at +-k sigma (an unbinned core fit, robust to one-sided tails and
    stable for a few hundred values). NaN for fewer than 10 values."""
    from math import erf

    x = np.asarray(x, np.float64)
    if len(x) < 10:
        return float("nan"), float("nan")
    centre, sigma = float(np.median(x)), sigma68(x)
    pdf = np.exp(-0.5 * k * k) / np.sqrt(2 * np.pi)
    trunc = np.sqrt(1 - 2 * k * pdf / erf(k / np.sqrt(2)))
    for _ in range(iterations):
        core = x[np.abs(x - centre) < k * sigma]
        if len(core) < 5:
            break
        centre, sigma = float(core.mean()), float(core.std() / trunc)
    return centre, sigma


def fast_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Unweighted ROC AUC by ranks (ties count one half): the same value as :func:`roc_auc`
    without weights, in one sort (for bootstrap loops)."""
    from scipy.stats import rankdata

    y = np.asarray(labels).astype(bool)
    ranks = rankdata(np.asarray(scores, np.float64))
    n1, n0 = int(y.sum()), int((~y).sum())
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def paired_bootstrap(
    labels: np.ndarray,
    scores_a: Sequence[np.ndarray],
    scores_b: Sequence[np.ndarray],
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """The difference AUC(a) - AUC(b) of two rows scored on the same test events, each trained
    with several seeds (``scores_a[s]``, ``scores_b[s]``: (n,) scores of seed s, pairs of the same
    seed), as the mean over seeds, with its ``confidence`` interval from resampling the seeds and
    the events together (the same resampled events for both rows): the spread covers every
    trained part and the finite test sample. Returns ``difference``, ``low``, ``high``."""
    y = np.asarray(labels).reshape(-1)
    a, b = [np.asarray(s).reshape(-1) for s in scores_a], [np.asarray(s).reshape(-1) for s in scores_b]
    n_seeds = min(len(a), len(b))
    if n_seeds == 0:
        raise ValueError("paired_bootstrap needs scores of at least one seed for both rows")
    point = float(np.mean([fast_auc(y, a[s]) - fast_auc(y, b[s]) for s in range(n_seeds)]))
    seed_rng = np.random.default_rng([seed, 1])
    rankers = [_CountAuc(y, s) for s in (*a[:n_seeds], *b[:n_seeds])]
    values: list[float] = []
    resamples = _resamples(y, n_bootstrap, seed)
    while len(values) < n_bootstrap:
        block = [i for _, i in zip(range(_BOOTSTRAP_BLOCK), resamples)]
        counts = np.stack([np.bincount(i, minlength=len(y)) for i in block]).astype(np.float64)
        aucs = np.stack([r(counts) for r in rankers])  # (2 n_seeds, block)
        for k in range(len(block)):
            seeds = seed_rng.integers(0, n_seeds, n_seeds)
            values.append(float(np.mean(aucs[seeds, k] - aucs[n_seeds + seeds, k])))
    low, high = np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2])
    return {
        "difference": point,
        "low": float(low),
        "high": float(high),
        "confidence": confidence,
        "seeds": n_seeds,
        "bootstrap": n_bootstrap,
    }


_BOOTSTRAP_BLOCK = 64
"""Bootstrap replicates evaluated together (memory: block x n_events float64 counts)."""


class _CountAuc:
    """Unweighted ROC AUC of one score vector on resampled events, given as counts: the events
    sorted once, each resample costs one pass. ``self(counts)`` with ``counts`` (B, n) (how many
    times each event was drawn) gives (B,) AUCs equal to :func:`fast_auc` on the resampled
    arrays, i.e. :func:`roc_auc` with the counts as weights (ties count one half), without a sort
    per resample."""

    def __init__(self, labels: np.ndarray, scores: np.ndarray) -> None:
        order = np.argsort(np.asarray(scores, np.float64), kind="stable")
        s = np.asarray(scores, np.float64)[order]
        self.order = order
        self.signal = np.asarray(labels).astype(bool)[order]
        self.starts = np.r_[0, np.nonzero(np.diff(s))[0] + 1]  # first event of each distinct score

    def __call__(self, counts: np.ndarray) -> np.ndarray:
        c = counts[:, self.order]
        sig = np.add.reduceat(np.where(self.signal, c, 0.0), self.starts, axis=1)
        bkg = np.add.reduceat(np.where(self.signal, 0.0, c), self.starts, axis=1)
        below = np.cumsum(bkg, axis=1) - bkg
        n1, n0 = sig.sum(1), bkg.sum(1)
        return (sig * (below + 0.5 * bkg)).sum(1) / (n1 * n0)
