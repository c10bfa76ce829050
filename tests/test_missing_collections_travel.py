"""A skim's missing collections travel with its events: HDF5 -> PCDF, the tokenized data set and
its card, and the card of a model trained on it."""

from __future__ import annotations

import json

import pytest
from root_copies import nanoaod_copy

from treasure_hf.data.io import h5_to_pcdf, read_events
from treasure_hf.data.sources.convert import ConvertTask, convert_file
from treasure_hf.data.validate import validate


@pytest.fixture(scope="module", autouse=True)
def _hf_cache(tmp_path_factory):
    from hf_samples import isolated_hf_cache

    with isolated_hf_cache(tmp_path_factory.mktemp("hf_cache")) as path:
        yield path


def test_missing_collections_reach_pcdf_the_tokenized_data_set_and_the_model_card(testdata, tmp_path):
    import datasets
    from hf_samples import tiny_tokenizer

    from treasure_hf.hf.export import INPUTS_FILE
    from treasure_hf.hf.hub import TRAINING_SUMMARY, model_card_for
    from treasure_hf.hf.tokenize import tokenize_to_dataset
    from treasure_hf.modeling import EventTransformerConfig
    from treasure_hf.training.common import dataset_description

    skim = nanoaod_copy(testdata / "cms_nanoaod_v15_tt_200ev.root", tmp_path / "skim.root", drop=("Photon_", "Tau_"))
    h5 = tmp_path / "skim.h5"
    convert_file(ConvertTask("cms", str(skim), str(h5)))
    pcdf = h5_to_pcdf(h5, tmp_path / "skim.pcdf", progress=False)
    assert validate(pcdf) == []
    assert read_events(pcdf).metadata["missing_collections"] == ["taus", "photons"]
    manifest = json.loads((pcdf / "pcdf.json").read_text())
    assert manifest["metadata"]["missing_collections"] == ["taus", "photons"]

    data = tmp_path / "tokenized"
    tokenizer = tiny_tokenizer([pcdf], tmp_path / "tok", steps=5)
    tokenize_to_dataset(tokenizer, [pcdf], data, labels={str(pcdf): "ttbar"}, progress=False)
    inputs = json.loads((data / INPUTS_FILE).read_text())
    assert inputs == {str(pcdf): {"experiment": "CMS", "is_simulation": 1, "missing_collections": ["taus", "photons"]}}
    card = (data / "README.md").read_text()
    assert "Collections missing from the inputs" in card and f"`{pcdf}`: taus, photons" in card

    ds = datasets.load_dataset(str(data))
    model = tmp_path / "model"
    EventTransformerConfig(
        vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    ).save_pretrained(model)
    (model / TRAINING_SUMMARY).write_text(json.dumps({"data": dataset_description(str(data), ds)}))
    text = str(model_card_for(model, "physicist/skim-model"))
    assert f"`{pcdf}`: taus, photons" in text and "Collections missing from the inputs" in text
