"""The benchmark's report: ``results.json`` (one record per row with ``name`` and ``auc``, plus the
samples, selection, cutflow, m4l peak widths, goals and timings), ``report.md`` (the same as
Markdown tables) and the figures ``roc.png``, ``m4l.png``, ``label_efficiency.png``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..data.atomic import atomic_output
from .plots import plot_label_efficiency, plot_m4l, plot_roc

LEARNED_PREFIXES = ("flat", "per_type", "vq", "fsq", "rvq", "pq", "hierarchical", "constituent")
TOKENIZED = ("vq", "fsq", "rvq", "pq", "hierarchical", "constituent")
CONTINUOUS = ("flat", "per_type")
GOAL_LABELS = 1000


def evaluate_goals(records: Sequence[Mapping[str, Any]], m4l_peak: Mapping[str, Mapping[str, float]],
                   best_tokenizer: str | None) -> list[dict]:
    """The issue's four goals, each with ``met`` (bool or None when its rows were not run) and the
    margin: learned rows against the BDT (within the larger of the two spreads, or above); best
    tokenized against best continuous row (within 0.005); decoded m4l peak width against the
    original (within 5%); fine-tuned against scratch at 1,000 labels (>= +0.02)."""
    by_key = {r["key"]: r for r in records}
    goals = []
    bdt = by_key.get("bdt")
    learned = [r for r in records if r["key"] in LEARNED_PREFIXES]
    if bdt and learned:
        short = []
        for r in learned:
            spread = max(r["auc_std"], bdt["auc_std"], (r["auc_bootstrap_ci68"][1] - r["auc_bootstrap_ci68"][0]) / 2)
            if r["auc"] + spread < bdt["auc"]:
                short.append({"row": r["name"], "auc": r["auc"], "below_bdt_by": bdt["auc"] - r["auc"],
                              "spread": spread})
        goals.append({"goal": "every learned row within its spread of, or above, the BDT", "met": not short,
                      "bdt_auc": bdt["auc"], "rows_short": short})
    tok = [r for r in records if r["key"] in TOKENIZED]
    cont = [r for r in records if r["key"] in CONTINUOUS]
    if tok and cont:
        bt, bc = max(tok, key=lambda r: r["auc"]), max(cont, key=lambda r: r["auc"])
        goals.append({"goal": "best tokenized row within 0.005 AUC of the best continuous row",
                      "met": bt["auc"] >= bc["auc"] - 0.005, "best_tokenized": bt["name"], "auc_tokenized": bt["auc"],
                      "best_continuous": bc["name"], "auc_continuous": bc["auc"], "difference": bt["auc"] - bc["auc"]})
    orig = m4l_peak.get("original", {}).get("sigma_core")
    if orig and best_tokenizer and best_tokenizer in m4l_peak:
        ratios = {k: v["sigma_core"] / orig - 1 for k, v in m4l_peak.items() if k != "original"}
        goals.append({"goal": "m4l peak width from decoded tokens within 5% of the original",
                      "met": abs(ratios[best_tokenizer]) <= 0.05, "tokenizer": best_tokenizer,
                      "sigma_original_gev": orig, "sigma_decoded_gev": m4l_peak[best_tokenizer]["sigma_core"],
                      "relative_difference": ratios[best_tokenizer], "all_tokenizers": ratios})
    ft = by_key.get(f"foundation_ft_{GOAL_LABELS}")
    sc = by_key.get(f"foundation_scratch_{GOAL_LABELS}")
    if ft and sc:
        goals.append({"goal": f"fine-tuned foundation model above scratch by >= 0.02 AUC at {GOAL_LABELS} labels",
                      "met": ft["auc"] - sc["auc"] >= 0.02, "fine_tuned": ft["auc"], "scratch": sc["auc"],
                      "gain": ft["auc"] - sc["auc"]})
    return goals


def _fmt_rej(x: float) -> str:
    return "inf" if math.isinf(x) else "n/a" if math.isnan(x) else f"{x:.1f}"


def markdown(report: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
             goals: Sequence[Mapping[str, Any]]) -> str:
    """The report as Markdown: the table, the m4l peak, the goals, the samples and selection."""
    a = report["arguments"]
    sel = report["selected"]
    lines = ["# H -> ZZ* -> 4l benchmark", "",
             f"Test events: {sel['test']} ({sel['signal']} signal and {sel['background']} background selected in all; "
             f"train/validation/test {sel['train']}/{sel['validation']}/{sel['test']}, the same split for every row). "
             f"AUC: mean +- standard deviation over {a['seeds']} trainings (seeds 0..{a['seeds'] - 1}); 68% bootstrap "
             f"interval of the first seed's AUC ({a['bootstrap']} resamples of the test events); background "
             "rejection 1/eff_B at 50% signal efficiency.", "",
             "| row | AUC | bootstrap 68% | rejection @ 50% | training events | time [s] |",
             "|---|---|---|---|---|---|"]
    for r in records:
        lo, hi = r["auc_bootstrap_ci68"]
        lines.append(f"| {r['name']} | {r['auc']:.4f} +- {r['auc_std']:.4f} | {lo:.4f}-{hi:.4f} | "
                     f"{_fmt_rej(r['rejection_at_50pct'])} +- {_fmt_rej(r['rejection_at_50pct_std'])} | "
                     f"{r['n_train']} | "
                     f"{r['seconds']:.0f} |")
    peak = report["m4l_peak"]
    lines += ["", "**m4l peak of the selected signal events** (sigma of a Gaussian core: the standard deviation "
              "within +-1.5 sigma of the centre, iterated and corrected for the truncation; sigma68 as a check), "
              "from the original leptons and from the same leptons decoded from each tokenizer's tokens:", "",
              "| leptons | sigma core [GeV] | sigma68 [GeV] | median [GeV] | relative to original |",
              "|---|---|---|---|---|"]
    orig = peak.get("original", {}).get("sigma_core", float("nan"))
    for k, v in peak.items():
        rel = "" if k == "original" else f"{v['sigma_core'] / orig - 1:+.1%}"
        lines.append(f"| {k} | {v['sigma_core']:.3f} | {v['sigma68']:.3f} | {v['median']:.2f} | {rel} |")
    lines += ["", "**Goals**", ""]
    for g in goals:
        state = {True: "met", False: "missed", None: "not run"}[g["met"]]
        detail = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in g.items() if k not in ("goal", "met")}
        lines.append(f"- {g['goal']}: **{state}** ({json.dumps(detail, default=str)})")
    lines += ["", "**Selection**: " + report["selection"] + ".", "",
              "**Samples**: " + json.dumps(report["samples"], default=str), "",
              "**Cutflow** (events left after each step): " + json.dumps(report["cutflow"]), "",
              f"**Channels** (selected): {json.dumps(report['channels'])}; "
              f"best tokenizer: {report['best_tokenizer']}.", "",
              f"**Timings** [s]: {json.dumps(report['timings_seconds'])}; tokenizers: "
              f"{json.dumps(report['tokenizer_seconds'])}; device {report['device']}, "
              f"{report['torch_threads']} torch threads.", ""]
    if report.get("pretraining"):
        lines += [f"**Pretraining** (masked objects on the unlabelled sample): {json.dumps(report['pretraining'])}", ""]
    return "\n".join(lines)


def write_report(report: dict, rows: Sequence[Any], m4l: Mapping[str, np.ndarray], out: str | Path) -> dict:
    """Write results.json, report.md and the PNGs into ``out``; returns the JSON content."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records = [r.record() for r in rows]
    goals = evaluate_goals(records, report["m4l_peak"], report.get("best_tokenizer"))
    content = {"rows": records, "goals": goals, **report}
    with atomic_output(out / "results.json") as tmp:
        tmp.write_text(json.dumps(_finite(content), indent=1, default=_default, allow_nan=False))
    with atomic_output(out / "report.md") as tmp:
        tmp.write_text(markdown(report, records, goals))
    curves = {r.name: (r.roc[0], r.roc[1], r.auc) for r in rows if r.roc is not None
              and not r.key.startswith("foundation")}
    curves.update({r.name: (r.roc[0], r.roc[1], r.auc) for r in rows if r.key.startswith("foundation_")
                   and r.extra.get("labels") == max((x.extra.get("labels", 0) for x in rows), default=0)})
    if curves:
        plot_roc(curves, out / "roc.png")
    plot_m4l(m4l["original"], {k: v for k, v in m4l.items() if k != "original"},
             {k: v["sigma_core"] for k, v in report["m4l_peak"].items()}, out / "m4l.png")
    found = [r for r in rows if r.key.startswith("foundation_")]
    if found:
        labels = sorted({r.extra["labels"] for r in found})
        curves_le = {}
        for mode in ("fine-tuned", "scratch"):
            rs = {r.extra["labels"]: r for r in found if r.extra["mode"] == mode}
            curves_le[mode] = (np.array([rs[n].auc for n in labels]), np.array([rs[n].auc_std for n in labels]))
        plot_label_efficiency(labels, curves_le, out / "label_efficiency.png")
    return content


def _finite(x: Any) -> Any:
    """Infinite or NaN floats (a rejection with no background left) become null: strict JSON."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if isinstance(x, (float, np.floating)) and not math.isfinite(float(x)):
        return None
    return x


def _default(x: Any) -> Any:
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    return str(x)
