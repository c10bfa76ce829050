"""The foundation model's training options: the continuous pretraining objective (MPMv2-style
targets, ``treasure pretrain --objective``), the frozen-encoder probe (``treasure finetune
--freeze-encoder``) and the experiment-token switch (``--no-experiment-token``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

SMALL = [
    "--hidden-size",
    "16",
    "--layers",
    "1",
    "--heads",
    "2",
    "--batch-size",
    "16",
    "--report-to",
    "none",
    "--logging-steps",
    "1",
]


@pytest.fixture(scope="module", autouse=True)
def _hf_cache(tmp_path_factory):
    from hf_samples import isolated_hf_cache

    with isolated_hf_cache(tmp_path_factory.mktemp("hf_cache")) as path:
        yield path


@pytest.fixture(scope="module")
def tokenized(tmp_path_factory):
    from hf_samples import tokenized_pair

    return tokenized_pair(tmp_path_factory.mktemp("found"))


def _tiny_model(objective: str):
    from treasure_hf.modeling import EventTransformerConfig, EventTransformerForMaskedEventModeling

    config = EventTransformerConfig(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        masked_objective=objective,
        token_id_ranges={"1:0": [10, 25], "2:0": [25, 40]},
    )
    return EventTransformerForMaskedEventModeling(config).eval()


def test_continuous_objective_is_the_mse_of_the_masked_objects_kinematics():
    from treasure_hf.modeling.modeling_event_transformer import flat_kinematics

    torch.manual_seed(0)
    ids = torch.tensor([[1, 5, 3, 12, 30, 2], [1, 6, 14, 3, 2, 0]])
    types = torch.tensor([[0, 0, 1, 1, 2, 0], [0, 0, 1, 2, 0, 0]])
    labels = torch.full_like(ids, -100)
    labels[0, 2], labels[1, 3] = 11, 27
    kin = torch.rand(2, 6, 6) * torch.tensor([50.0, 2.0, 3.0, 80.0, 5.0, 1.0])
    inputs = {
        "input_ids": ids,
        "token_type_ids": types,
        "attention_mask": (ids > 0).long(),
        "labels": labels,
        "target_kinematics": kin,
    }
    parts = {}
    for objective in ("codes", "continuous", "codes+continuous"):
        torch.manual_seed(1)
        model = _tiny_model(objective)
        with torch.no_grad():
            parts[objective] = model(**inputs)
    cont = parts["continuous"]
    where = labels != -100
    expected = ((cont.kinematics[where] - flat_kinematics(kin, model.config.kinematics_log_columns)[where]) ** 2).mean()
    assert (
        cont.code_loss is None
        and torch.allclose(cont.loss, expected)
        and torch.allclose(cont.continuous_loss, expected)
    )
    codes = parts["codes"]
    assert codes.continuous_loss is None and codes.kinematics is None and torch.allclose(codes.loss, codes.code_loss)
    both = parts["codes+continuous"]  # the sum of the two
    ce = torch.nn.functional.cross_entropy(both.logits[where], labels[where])
    mse = ((both.kinematics[where] - flat_kinematics(kin, model.config.kinematics_log_columns)[where]) ** 2).mean()
    assert torch.allclose(both.code_loss, ce) and torch.allclose(both.continuous_loss, mse)
    assert torch.allclose(both.loss, ce + mse)
    with pytest.raises(ValueError, match="target_kinematics"):
        _tiny_model("continuous")(**{k: v for k, v in inputs.items() if k != "target_kinematics"})
    with pytest.raises(ValueError, match="masked_objective"):
        _tiny_model("flow")


def test_the_cli_and_the_config_share_their_lists_of_choices():
    from treasure_hf.modeling import configuration_event_transformer as config_side
    from treasure_hf.training.arguments import MASKED_OBJECTIVES, STAGE_POOLINGS

    assert MASKED_OBJECTIVES == config_side.MASKED_OBJECTIVES
    assert STAGE_POOLINGS == config_side.STAGE_POOLINGS


@pytest.mark.parametrize("data", ["continuous", "plain"])
def test_pretrain_continuous_resumes_and_a_probe_trains_the_classifier_alone(tokenized, tmp_path, data, capsys):
    from safetensors.torch import load_file

    from treasure_hf.cli import main

    _, sets = tokenized
    out = tmp_path / "mem"
    common = [
        "--data",
        str(sets[data]),
        "--out",
        str(out),
        "--max-steps",
        "4",
        "--save-steps",
        "2",
        "--objective",
        "continuous",
        *SMALL,
    ]
    assert main(["-q", "pretrain", *common, "--stop-at-step", "2"]) == 0
    assert not (out / "model.safetensors").exists()
    assert main(["-q", "pretrain", *common, "--resume"]) == 0
    config = json.loads((out / "config.json").read_text())
    summary = json.loads((out / "training_summary.json").read_text())
    assert config["masked_objective"] == "continuous" and summary["objective"] == "continuous"
    assert [h["step"] for h in summary["history"]] == [3, 4] and all(np.isfinite(h["loss"]) for h in summary["history"])
    assert ("original continuous kinematics" in summary["procedure_text"]) == (data == "continuous")
    weights = load_file(out / "model.safetensors")
    assert "kinematics_decoder.weight" in weights
    capsys.readouterr()
    assert (
        main(
            [
                "-q",
                "pretrain",
                "--data",
                str(sets[data]),
                "--out",
                str(tmp_path / "again"),
                "--model",
                str(out),
                "--max-steps",
                "2",
                "--objective",
                "codes",
                *SMALL,
            ]
        )
        != 0
    )  # continuing with another objective
    assert "error: --objective: " in capsys.readouterr().err
    if data == "plain":
        return
    # the linear probe: every loaded weight stays as pretrained, the classification layer learns
    assert (
        main(
            [
                "-q",
                "finetune",
                "--data",
                str(sets[data]),
                "--model",
                str(out),
                "--out",
                str(tmp_path / "probe"),
                "--max-steps",
                "6",
                "--eval-steps",
                "3",
                "--lr",
                "1e-2",
                "--freeze-encoder",
                *SMALL,
            ]
        )
        == 0
    )
    probe = load_file(tmp_path / "probe" / "model.safetensors")
    shared = [k for k in probe if k.startswith("transformer.") and k in weights]
    assert shared and all(torch.equal(probe[k], weights[k]) for k in shared)
    capsys.readouterr()
    assert (
        main(
            [
                "-q",
                "finetune",
                "--data",
                str(sets[data]),
                "--out",
                str(tmp_path / "p2"),
                "--max-steps",
                "2",
                "--freeze-encoder",
                *SMALL,
            ]
        )
        != 0
    )
    assert "error: --freeze-encoder: " in capsys.readouterr().err


def test_freeze_encoder_leaves_the_classifier_alone_trainable():
    from treasure_hf.modeling import EventTransformerConfig, EventTransformerForSequenceClassification
    from treasure_hf.training.finetune import freeze_encoder

    model = EventTransformerForSequenceClassification(
        EventTransformerConfig(
            vocab_size=40,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            num_labels=2,
        )
    )
    assert freeze_encoder(model) == ["classifier.weight", "classifier.bias"]


def test_without_the_experiment_token_the_model_cannot_tell_the_detectors_apart(tokenized):
    import argparse

    from treasure_hf.modeling import EventTransformerForSequenceClassification
    from treasure_hf.tokenization import EventTokenizer
    from treasure_hf.training.arguments import FinetuneArguments, add_finetune_arguments, from_namespace
    from treasure_hf.training.common import new_config

    root, _ = tokenized
    tok = EventTokenizer.from_pretrained(root / "tok")
    parser = add_finetune_arguments(argparse.ArgumentParser())
    atlas, cms = tok.experiment_token_id(0), tok.experiment_token_id(1)
    ids = torch.tensor([[1, atlas, 2]])
    logits = {}
    for flags in ([], ["--no-experiment-token"]):
        args = from_namespace(
            FinetuneArguments,
            parser.parse_args(
                ["--data", "d", "--out", "o", "--hidden-size", "16", "--heads", "2", "--layers", "1", *flags]
            ),
        )
        torch.manual_seed(0)
        model = EventTransformerForSequenceClassification(new_config(tok, args, num_labels=2)).eval()
        assert model.config.experiment_conditioning == (not flags)
        with torch.no_grad():
            logits[bool(flags)] = [
                model(input_ids=x, token_type_ids=torch.zeros_like(x)).logits
                for x in (ids, torch.where(ids == atlas, cms, ids))
            ]
    assert not torch.allclose(*logits[False])  # the token tells ATLAS from CMS
    assert torch.equal(*logits[True])  # embedded alike
