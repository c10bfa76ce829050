"""``push_to_hub`` for tokenizers, models and tokenized data sets through ``huggingface_hub``,
each with a card generated from the templates of ``treasure_hf/hf/templates/``.

A folder is pushed whole in one commit (``HfApi.upload_folder``) with its ``README.md`` card
written for the target repo. Which kind a folder is: ``data/*.parquet`` -> data set,
``config.json`` -> model, ``event_tokenizer.json`` alone -> tokenizer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import FormatError, OutputError
from .remote_code import add_remote_code

logger = logging.getLogger(__name__)

TRAINING_SUMMARY = "training_summary.json"
"""Written next to a trained model: data, tokenizer, hyperparameters and eval results (for its card)."""


def folder_kind(folder: str | os.PathLike) -> str:
    folder = Path(folder)
    if (folder / "data").is_dir() and any((folder / "data").glob("*.parquet")):
        return "dataset"
    if (folder / "config.json").exists():
        return "model"
    if (folder / "event_tokenizer.json").exists():
        return "tokenizer"
    raise FormatError(folder, None, "is not a saved model, tokenizer or tokenized data set")


def tokenizer_card(folder: str | os.PathLike, repo_or_path: str, training_data: str | None = None):
    """The card of a saved :class:`EventTokenizer`."""
    from huggingface_hub import ModelCard, ModelCardData

    from .cards import TEMPLATES, _template

    folder = Path(folder)
    layout = json.loads((folder / "event_tokenizer.json").read_text())
    log_path = folder / "training_log.json"
    log = json.loads(log_path.read_text()) if log_path.exists() else {}
    types = log.get("types", {})
    quantizers = sorted(
        (
            {
                "type": t,
                "method": q.get("method", "?"),
                "stages": q.get("num_stages", "?"),
                "codebook_size": q.get("codebook_size", "?"),
                "first": layout["id_ranges"][t][0],
                "last": layout["id_ranges"][t][1] - 1,
            }
            for t, q in layout["quantizers"].items()
        ),
        key=lambda q: q["first"],
    )
    if training_data is None:
        counts = [
            f"{t}: {v['n_train']} objects for training, {v['n_eval']} held out (utilisation "
            f"{v['final']['utilisation']:.2f}, reconstruction MSE {v['final']['reconstruction_mse']:.3g} in "
            "standardised units)"
            for t, v in types.items()
            if "n_train" in v and "final" in v
        ]
        training_data = (
            "Per type, from `training_log.json`:\n\n" + "\n".join(f"- {c}" for c in counts)
            if counts
            else "Not recorded with the tokenizer (see `training_log.json`)."
        )
    data = ModelCardData(
        license="other", library_name="transformers", tags=["physics", "collider", "treasure-hf", "tokenizer"]
    )
    return ModelCard.from_template(
        data,
        template_path=_template(TEMPLATES / "tokenizer_card_template.md"),
        model_name=f"EventTokenizer {repo_or_path}",
        repo_or_path=repo_or_path,
        quantizers=quantizers,
        description="An EventTokenizer of treasure-hf: one learned quantizer per object type turns each "
        "physics object into tokens.",
        training_data=training_data,
    )


def model_card_for(folder: str | os.PathLike, repo_or_path: str):
    """The card of a model saved by ``treasure finetune``/``pretrain`` (reads its training summary)."""
    from .cards import model_card

    folder = Path(folder)
    path = folder / TRAINING_SUMMARY
    summary: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    config = json.loads((folder / "config.json").read_text())
    arch = (config.get("architectures") or ["EventTransformer"])[0]
    data = summary.get("data", {})
    if summary.get("training_data_text"):
        training_data = summary["training_data_text"]
    elif data:
        splits = ", ".join(f"{k} {v:,} events" for k, v in data.get("splits", {}).items())
        training_data = f"Tokenized data set `{data.get('repo_id') or data.get('path')}` ({splits})."
        if data.get("sources"):
            training_data += " Made from " + ", ".join(f"`{s}`" for s in data["sources"]) + "."
        if data.get("label_names"):
            training_data += " Classes: " + ", ".join(f"{i} = `{n}`" for i, n in enumerate(data["label_names"])) + "."
        if data.get("inputs"):
            from .export import inputs_text

            training_data = (training_data + " " + inputs_text(data["inputs"])).strip()
    else:
        training_data = "Not recorded."
    arch_to_auto = {
        "EventTransformerForSequenceClassification": "AutoModelForSequenceClassification",
        "EventTransformerForMaskedEventModeling": "AutoModelForMaskedLM",
    }
    results = summary.get("eval_results", [])
    procedure = summary.get("procedure_text") or json.dumps(summary.get("args", {}), indent=1)
    return model_card(
        model_name=repo_or_path.rsplit("/", 1)[-1],
        repo_or_path=repo_or_path,
        description=f"A treasure-hf `{arch}` ({config.get('num_hidden_layers', '?')} layers, hidden size "
        f"{config.get('hidden_size', '?')}) on tokenized collider events.",
        training_data=training_data,
        tokenizer=summary.get("tokenizer", "saved with the model"),
        training_procedure=procedure,
        eval_results=results,
        datasets=[d for d in [data.get("repo_id")] if d],
        base_model=summary.get("base_model"),
        auto_class=arch_to_auto.get(arch, "AutoModel"),
    )


def _dataset_readme(folder: Path, repo_id: str) -> str:
    text = (folder / "README.md").read_text() if (folder / "README.md").exists() else None
    if text is None:
        raise FormatError(folder, "README.md", "a data set needs its card (written by treasure tokenize)")
    # the card names the folder it was written to: point it at the repo instead
    return text.replace(f'load_dataset("{folder}")', f'load_dataset("{repo_id}")').replace(
        f'load_dataset("{os.fspath(folder.resolve())}")', f'load_dataset("{repo_id}")'
    )


@contextlib.contextmanager
def _hub_errors(endpoint: str, repo_id: str) -> Iterator[None]:
    """The hub client's HTTP and connection errors as one :class:`OutputError` naming the hub."""
    try:
        yield
    except Exception as exc:
        from huggingface_hub.errors import HfHubHTTPError

        network = type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "requests", "urllib3")
        if not (network or isinstance(exc, HfHubHTTPError)):
            raise
        what = "cannot reach the hub" if network else "the hub refused the push"
        raise OutputError(endpoint, repo_id, f"{what}: {' '.join(str(exc).split()[:30])}") from None


def push_to_hub(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    kind: str | None = None,
    private: bool | None = None,
    commit_message: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
) -> str:
    """Push a saved tokenizer, model or tokenized data set with a generated card. Returns the
    commit URL. ``endpoint``: another hub than ``HF_ENDPOINT``."""
    from huggingface_hub import HfApi

    folder = Path(folder)
    kind = kind or folder_kind(folder)
    if kind not in ("tokenizer", "model", "dataset"):
        raise ValueError(f"kind must be tokenizer, model or dataset, not {kind!r}")
    repo_type = "dataset" if kind == "dataset" else "model"
    if kind == "dataset":
        card = _dataset_readme(folder, repo_id)
    elif kind == "model":
        card = str(model_card_for(folder, repo_id))
    else:
        card = str(tokenizer_card(folder, repo_id))
    api = HfApi(endpoint=endpoint, token=token)
    with tempfile.TemporaryDirectory() as staging, _hub_errors(api.endpoint, repo_id):
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        stage = Path(staging) / "repo"
        ignore = shutil.ignore_patterns("checkpoint-*", "checkpoints", "runs", "*.lock", ".*")
        shutil.copytree(folder, stage, ignore=ignore)
        if kind != "dataset":
            add_remote_code(stage)
        (stage / "README.md").write_text(card)
        info = api.upload_folder(
            folder_path=stage,
            repo_id=repo_id,
            repo_type=repo_type,
            commit_message=commit_message or f"Upload {kind} with treasure-hf",
        )
    logger.info("pushed %s %s to %s", kind, folder, info.commit_url if hasattr(info, "commit_url") else info)
    return str(getattr(info, "commit_url", info))
