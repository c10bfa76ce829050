"""The report's figures (PNG, matplotlib's Agg backend): ROC curves, the m4l distribution of the
original against the decoded-token leptons, and the label-efficiency curve."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..data.atomic import atomic_output


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")


def plot_roc(curves: Mapping[str, tuple[np.ndarray, np.ndarray, float]], path: str | Path) -> None:
    """``curves``: {row name: (background efficiency, signal efficiency, AUC)}; drawn as background
    rejection (1 / eff_B, log scale) against signal efficiency, the HEP convention."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    for name, (fpr, tpr, auc) in curves.items():
        keep = fpr > 0
        ax.plot(tpr[keep], 1.0 / fpr[keep], label=f"{name} (AUC {auc:.3f})", lw=1.3)
    ax.set_yscale("log")
    ax.set_xlabel("signal efficiency (H -> ZZ* -> 4l)")
    ax.set_ylabel("background rejection 1 / eff (ZZ*)")
    ax.set_xlim(0, 1)
    ax.axvline(0.5, color="grey", lw=0.6, ls=":")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    _save(fig, Path(path))
    plt.close(fig)


def plot_m4l(original: np.ndarray, decoded: Mapping[str, np.ndarray], widths: Mapping[str, float],
             path: str | Path, window: tuple[float, float] = (110.0, 140.0)) -> None:
    """m4l [GeV] of the selected signal events from the original leptons against the same leptons
    decoded from each tokenizer's tokens; ``widths`` {label: peak width [GeV]} go in the legend."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    bins = np.linspace(*window, 61)
    ax.hist(original, bins, histtype="stepfilled", alpha=0.3, color="k",
            label=f"original (sigma {widths.get('original', float('nan')):.2f} GeV)")
    for name, m in decoded.items():
        sigma = widths.get(name, float("nan"))
        ax.hist(m, bins, histtype="step", lw=1.3, label=f"{name} tokens (sigma {sigma:.2f} GeV)")
    ax.set_xlabel("m4l [GeV]")
    ax.set_ylabel(f"events / {bins[1] - bins[0]:.1f} GeV")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, Path(path))
    plt.close(fig)


def plot_label_efficiency(labels: Sequence[int], curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
                          path: str | Path) -> None:
    """AUC (mean, spread) against the number of labelled training events, one curve per model."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, (mean, spread) in curves.items():
        ax.errorbar(labels, mean, yerr=spread, marker="o", capsize=3, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("labelled training events")
    ax.set_ylabel("test AUC")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    _save(fig, Path(path))
    plt.close(fig)
