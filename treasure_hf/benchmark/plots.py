"""The report's figures (PNG, matplotlib's Agg backend): ROC curves, AUC and m4l width against
bits per object, and the label-efficiency curve."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

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


def bits_curves(
    token_records: Sequence[Mapping], m4l: Mapping, reference: Mapping[str, float] | None = None
) -> dict[str, dict]:
    """The study's answer as data: ``auc`` (test AUC against bits per object, one curve per method
    and family, with the BDT's and continuous rows' AUCs as ``reference``) and ``m4l`` (the m4l
    core width [GeV] of the test signal decoded from the tokens against bits, mean and standard
    deviation over seeds, beside the original leptons' width). What the PNGs draw; written as
    ``auc_vs_bits.json`` and ``m4l_vs_bits.json``."""
    auc: dict[str, dict] = {}
    width: dict[str, dict] = {}
    for m in sorted({r["method"] for r in token_records}):
        for family in ("ids", "ids+decoded"):
            pts = sorted(
                (r["bits_per_object"], r["auc"], r["auc_std"])
                for r in token_records
                if r["method"] == m and r["inputs"] == family
            )
            if pts:
                x, y, e = zip(*pts)
                auc[f"{m.upper()} {family}"] = {"method": m, "inputs": family, "bits": x, "auc": y, "auc_std": e}
        pts = sorted(
            (d["bits_per_object"], float(np.mean(w)), float(np.std(w)))
            for d in m4l["decoded"]
            if d["method"] == m and len(w := [v for v in d["m4l_sigma_core_per_seed"] if np.isfinite(v)])
        )
        if pts:
            x, y, e = zip(*pts)
            width[f"{m.upper()} decoded"] = {"method": m, "bits": x, "sigma_core_gev": y, "sigma_core_std_gev": e}
    return {
        "auc": {"curves": auc, "reference_auc": dict(reference or {})},
        "m4l": {"curves": width, "original_sigma_core_gev": m4l["original"]["sigma_core"]},
    }


def plot_bits(curves: Mapping[str, Mapping], auc_path: str | Path, m4l_path: str | Path) -> None:
    """:func:`bits_curves` drawn: test AUC against bits per object, one line per method and family
    (ids: dashed, ids+decoded: solid; the continuous rows and the BDT as horizontal lines); and
    the m4l core width from decoded tokens against bits, with the original's width."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    methods = sorted({c["method"] for part in ("auc", "m4l") for c in curves[part]["curves"].values()})
    colours = {m: f"C{i}" for i, m in enumerate(methods)}
    for label, c in curves["auc"]["curves"].items():
        ax.errorbar(
            c["bits"],
            c["auc"],
            yerr=c["auc_std"],
            marker="o",
            ls="--" if c["inputs"] == "ids" else "-",
            color=colours[c["method"]],
            capsize=3,
            label=label,
        )
    for i, (name, value) in enumerate(curves["auc"]["reference_auc"].items()):
        ax.axhline(value, color="grey", ls=(":", "-.", "--")[i % 3], lw=1, label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("bits per object")
    ax.set_ylabel("test AUC (H -> ZZ* -> 4l against ZZ*)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, Path(auc_path))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 5))
    for label, c in curves["m4l"]["curves"].items():
        ax.errorbar(
            c["bits"],
            c["sigma_core_gev"],
            yerr=c["sigma_core_std_gev"],
            marker="o",
            color=colours[c["method"]],
            capsize=3,
            label=label,
        )
    orig = curves["m4l"]["original_sigma_core_gev"]
    if np.isfinite(orig):
        ax.axhline(orig, color="k", lw=1, label=f"original leptons ({orig:.2f} GeV)")
        ax.axhspan(orig * 0.95, orig * 1.05, color="k", alpha=0.08, label="within 5%")
    ax.set_xscale("log", base=2)
    if ax.lines or ax.collections:
        ax.set_yscale("log")
    ax.set_xlabel("bits per object")
    ax.set_ylabel("m4l core width of the test signal [GeV]")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, Path(m4l_path))
    plt.close(fig)


def plot_label_efficiency(
    labels: Sequence[int], curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | Path
) -> None:
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


def plot_label_efficiency_panels(
    curves: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]], path: str | Path
) -> None:
    """One panel per task: test AUC (mean, seed spread) against labelled training events, one curve
    per model. ``curves``: {task: {model: {"labels", "auc", "auc_std"}}}."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(curves), figsize=(5.5 * len(curves), 4.5), squeeze=False)
    for ax, (task, models) in zip(axes[0], curves.items()):
        for name, c in models.items():
            ax.errorbar(c["labels"], c["auc"], yerr=c["auc_std"], marker="o", capsize=3, label=name)
        ax.set_xscale("log")
        ax.set_xlabel("labelled training events")
        ax.set_ylabel("test AUC")
        ax.set_title(task)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, Path(path))
    plt.close(fig)


def plot_transfer_gap(gaps: Sequence[Mapping], settings: Mapping[str, str], path: str | Path) -> None:
    """The transfer gap (AUC on the target detector, transferred minus own labels) with its 95%
    interval, per task, direction and setting; ``settings``: {setting: description}."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    groups = sorted({(g["task"], g["source"], g["target"]) for g in gaps})
    width = 0.8 / max(1, len(settings))
    for k, (setting, text) in enumerate(settings.items()):
        xs, ys, lo, hi = [], [], [], []
        for i, grp in enumerate(groups):
            g = next(
                (g for g in gaps if (g["task"], g["source"], g["target"]) == grp and g["setting"] == setting), None
            )
            if g is None:
                continue
            xs.append(i + (k - (len(settings) - 1) / 2) * width)
            ys.append(g["gap"]["difference"])
            lo.append(g["gap"]["difference"] - g["gap"]["low"])
            hi.append(g["gap"]["high"] - g["gap"]["difference"])
        ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o", capsize=3, label=text)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(range(len(groups)), [f"{t}\n{s} -> {d}" for t, s, d in groups])
    ax.set_ylabel("transfer gap [AUC]")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, Path(path))
    plt.close(fig)
