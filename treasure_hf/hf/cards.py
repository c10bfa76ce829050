"""Dataset and model cards from the Jinja templates of ``treasure_hf/hf/templates/``, through
huggingface_hub's ``DatasetCard``/``DatasetCardData`` and ``ModelCard``/``ModelCardData``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..provenance import git_hash

TEMPLATES = Path(__file__).resolve().parent / "templates"
"""The card templates, package data of ``treasure_hf.hf`` (they travel in the wheel)."""
DATASET_TEMPLATE = TEMPLATES / "dataset_card_template.md"
MODEL_TEMPLATE = TEMPLATES / "model_card_template.md"


def _template(path: Path) -> str:
    if not path.exists():
        raise FileNotFoundError(f"card template {path} is missing: the treasure_hf installation is incomplete")
    return str(path)


def _size_category(n: int) -> str:
    for limit, name in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
    ):
        if n < limit:
            return name
    return "n>1M"


def provenance_text(extra: Mapping[str, Any] | None = None) -> str:
    info = {"creator": f"treasure-hf {__version__}", "git_hash": git_hash(), **(extra or {})}
    return "\n".join(f"- {k}: `{json.dumps(v) if not isinstance(v, str) else v}`" for k, v in info.items())


def dataset_card(
    *,
    pretty_name: str,
    description: str,
    splits: Mapping[str, int],
    columns: Sequence[Mapping[str, str]],
    repo_or_path: str,
    sources: Sequence[str] = (),
    tokenizer: str | None = None,
    label_names: Sequence[str] | None = None,
    provenance: Mapping[str, Any] | None = None,
    tags: Sequence[str] = (),
    dataset_info: Mapping[str, Any] | None = None,
) -> str:
    """The README.md of an export: YAML (``configs:`` for stock ``load_dataset``) + prose."""
    from huggingface_hub import DatasetCard, DatasetCardData

    from .export import DATA_DIR, configs_yaml

    data = DatasetCardData(
        pretty_name=pretty_name,
        license="other",
        tags=list(tags),
        size_categories=_size_category(sum(splits.values())),
        configs=configs_yaml(splits),
        dataset_info=dict(dataset_info) if dataset_info else None,
    )
    card = DatasetCard.from_template(
        data,
        template_path=_template(DATASET_TEMPLATE),
        pretty_name=pretty_name,
        description=description,
        splits=[{"name": s, "num_rows": n, "pattern": f"{DATA_DIR}/{s}-*.parquet"} for s, n in splits.items()],
        columns=list(columns),
        sources=list(sources),
        tokenizer=tokenizer,
        label_names=list(label_names or []),
        repo_or_path=repo_or_path,
        provenance=provenance_text(provenance),
    )
    return str(card)


def model_card(
    *,
    model_name: str,
    description: str,
    training_data: str,
    tokenizer: str,
    training_procedure: str,
    repo_or_path: str,
    datasets: Sequence[str] = (),
    eval_results: Sequence[Mapping[str, Any]] = (),
    task: str | None = None,
    intended_use: str | None = None,
    limitations: str | None = None,
    base_model: str | None = None,
    auto_class: str = "AutoModel",
):
    """A ``ModelCard``: eval results (``{"dataset_name", "dataset_split", "metric_name",
    "metric_value", "dataset_type"}``) go both into the YAML ``model-index`` and the table."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    results = [
        EvalResult(
            task_type=task or "text-classification",
            dataset_type=r.get("dataset_type", r["dataset_name"]),
            dataset_name=r["dataset_name"],
            dataset_split=r.get("dataset_split"),
            metric_type=r["metric_name"].lower().replace(" ", "_"),
            metric_name=r["metric_name"],
            metric_value=float(r["metric_value"]),
        )
        for r in eval_results
    ]
    data = ModelCardData(
        model_name=model_name if results else None,
        license="other",
        library_name="transformers",
        tags=["physics", "collider", "treasure-hf"],
        datasets=list(datasets) or None,
        eval_results=results or None,
        base_model=base_model,
        pipeline_tag=None,
    )
    return ModelCard.from_template(
        data,
        template_path=_template(MODEL_TEMPLATE),
        model_name=model_name,
        description=description,
        training_data=training_data,
        tokenizer=tokenizer,
        eval_results=list(eval_results),
        training_procedure=training_procedure,
        repo_or_path=repo_or_path,
        auto_class=auto_class,
        intended_use=intended_use
        or (
            "Research on event classification and representation learning with "
            "collider events tokenized by the same tokenizer; not for physics results "
            "without a validation of its own."
        ),
        limitations=limitations
        or (
            "Trained on simulated events of the named samples and detector: it has not "
            "seen real data, other detectors or other processes; its scores are not "
            "calibrated probabilities."
        ),
    )
