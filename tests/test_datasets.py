"""PCDF events as Hugging Face data sets: the builder, exports stock `datasets` reads, tokenized
data sets with their splits, and the collators."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from treasure_hf.data.pcdf import write_pcdf
from treasure_hf.data.synthetic import random_events

# Stock datasets in a fresh interpreter where importing treasure_hf is impossible.
STOCK = """
import importlib.abc, json, sys
class Forbid(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "treasure_hf":
            raise ImportError("treasure_hf must not be needed to read an export")
sys.meta_path.insert(0, Forbid())
import datasets
ds = datasets.load_dataset(sys.argv[1], cache_dir=sys.argv[2])
stream = datasets.load_dataset(sys.argv[1], split=sys.argv[3], streaming=True)
streamed = list(stream)  # read to the end: an abandoned stream can abort the interpreter at exit
first = streamed[0]
print(json.dumps({"splits": {k: len(v) for k, v in ds.items()}, "features": str(ds[sys.argv[3]].features),
                  "row": ds[sys.argv[3]][int(sys.argv[4])], "first_stream": first,
                  "first": ds[sys.argv[3]][0], "n_stream": len(streamed)}, default=str))
"""


def stock_load(path, cache, split, row):
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", STOCK, str(path), str(cache), split, str(row)],
        capture_output=True,
        text=True,
        env=env,
        cwd=path,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module", autouse=True)
def _hf_cache(tmp_path_factory):
    from hf_samples import isolated_hf_cache

    with isolated_hf_cache(tmp_path_factory.mktemp("hf_cache")) as path:
        yield path


@pytest.fixture(scope="module")
def pcdf(tmp_path_factory):
    path = tmp_path_factory.mktemp("pcdf") / "events.pcdf"
    ragged = random_events(250, 3, layers=("atlas", "truth"), sub_groups=("constituents",))
    write_pcdf(path, ragged, events_per_part=100)
    return path, ragged.to_padded({"jets": 40, "tracks": 200, "constituents": 60})


def test_load_pcdf_gives_one_row_per_event_with_objects_in_descending_pt(pcdf, tmp_path):
    from treasure_hf import load_pcdf

    path, padded = pcdf
    ds = load_pcdf(path, split="train", cache_dir=tmp_path / "cache", sub_groups=("constituents",))
    assert len(ds) == 250
    for i in (0, 17, 249):
        row = ds[i]
        assert row["event_index"] == i
        jets = row["jets"]
        n_jets = int(padded.mask("jets")[i].sum())
        assert len(jets) == n_jets
        assert np.array_equal(np.float32([j["pt"] for j in jets]), padded["common/jets/pt"][i, :n_jets])
        assert np.array_equal(np.float32([j["atlas_GN2_pb"] for j in jets]), padded["atlas/jets/GN2_pb"][i, :n_jets])
        assert [j["truth_flavour"] for j in jets] == padded["truth/jets/flavour"][i, :n_jets].tolist()
        for k, j in enumerate(jets):  # constituents nested in their jet, descending pT
            n_c = int(padded.mask("constituents")[i, k].sum())
            assert np.array_equal(
                np.float32([c["pt"] for c in j["constituents"]]), padded["common/constituents/pt"][i, k, :n_c]
            )
        assert np.float32(row["met_pt"]) == padded["common/met/pt"][i]
        assert row["truth_process_id"] == padded["truth/event/process_id"][i]


def test_load_pcdf_streams_part_by_part_the_same_rows(pcdf, tmp_path):
    from treasure_hf import load_pcdf

    path, padded = pcdf
    stream = load_pcdf(path, split="train", streaming=True, types=("muons", "electrons"))
    assert stream.num_shards == 3  # one per PCDF part
    rows = list(stream)
    assert [r["event_index"] for r in rows] == list(range(250))
    assert set(rows[0]) >= {"muons", "electrons", "met_pt"} and "jets" not in rows[0]
    n_mu = [len(r["muons"]) for r in rows]
    assert n_mu == padded.mask("muons").sum(1).tolist()


def test_load_pcdf_names_the_missing_input(tmp_path):
    from treasure_hf import load_pcdf
    from treasure_hf.errors import FormatError

    with pytest.raises(FormatError, match="nothing.pcdf"):
        load_pcdf(tmp_path / "nothing.pcdf")


def test_export_is_parquet_that_stock_datasets_loads_without_treasure_hf(pcdf, tmp_path):
    from treasure_hf.hf.export import export_events

    path, padded = pcdf
    h5 = tmp_path / "more.h5"
    from treasure_hf.data.h5 import write_h5

    write_h5(h5, random_events(60, 4, layers=("atlas", "truth")).to_padded())
    out = export_events({"train": [path], "test": [h5]}, tmp_path / "export", rows_per_shard=100, progress=False)
    names = sorted(p.name for p in (out / "data").iterdir())
    assert names == [
        "test-00000-of-00001.parquet",
        "train-00000-of-00003.parquet",
        "train-00001-of-00003.parquet",
        "train-00002-of-00003.parquet",
    ]
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "configs:" in card and "data/train-*.parquet" in card
    got = stock_load(out, tmp_path / "cache", "train", 42)
    assert got["splits"] == {"train": 250, "test": 60}
    assert got["row"]["event_index"] == 42
    n_e = int(padded.mask("electrons")[42].sum())
    assert np.array_equal(
        np.float32([e["pt"] for e in got["row"]["electrons"]]), padded["common/electrons/pt"][42, :n_e]
    )
    assert got["first_stream"]["event_index"] == got["first"]["event_index"] == 0


@pytest.fixture(scope="module")
def tokenized(tmp_path_factory):
    from hf_samples import tiny_tokenizer, write_samples

    from treasure_hf.hf.tokenize import tokenize_to_dataset

    root = tmp_path_factory.mktemp("tokenized")
    samples = write_samples(root / "samples", n_events=150)
    tok_dir = root / "tok"
    tiny_tokenizer(list(samples.values()), tok_dir)
    out = tokenize_to_dataset(
        tok_dir,
        [samples["signal"], samples["background"]],
        root / "data",
        split="train=0.6,validation=0.2,test=0.2",
        labels={str(samples["signal"]): "signal", str(samples["background"]): "background"},
        seed=5,
        step=40,
        rows_per_shard=70,
        progress=False,
    )
    return samples, tok_dir, out


def test_split_assignment_is_deterministic_and_follows_the_fractions():
    from treasure_hf.hf.tokenize import assign_splits, parse_split, split_hash

    fr = parse_split("train=0.8,validation=0.1,test=0.1")
    idx = np.arange(100_000)
    which = assign_splits(split_hash(0, idx, 3), fr)
    frac = np.bincount(which, minlength=3) / len(idx)
    assert np.allclose(frac, [0.8, 0.1, 0.1], atol=0.005)
    # chunking does not matter, the seed and the file do
    again = np.concatenate(
        [assign_splits(split_hash(0, idx[:777], 3), fr), assign_splits(split_hash(0, idx[777:], 3), fr)]
    )
    assert np.array_equal(which, again)
    assert not np.array_equal(which, assign_splits(split_hash(0, idx, 4), fr))
    assert not np.array_equal(which, assign_splits(split_hash(1, idx, 3), fr))
    with pytest.raises(ValueError, match="add up to 1"):
        parse_split("train=0.8,test=0.1")


def test_tokenized_data_set_matches_the_tokenizer_and_loads_with_stock_datasets(tokenized, tmp_path):
    from treasure_hf import read_events
    from treasure_hf.tokenization import EventTokenizer

    samples, tok_dir, out = tokenized
    got = stock_load(out, tmp_path / "cache", "train", 0)
    assert sum(got["splits"].values()) == 300 and set(got["splits"]) == {"train", "validation", "test"}
    assert "ClassLabel(names=['signal', 'background'])" in got["features"]
    card = (out / "README.md").read_text()
    assert "signal" in card and "input_ids" in card and "train=" not in card.split("---")[1]

    import datasets

    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "c2"))
    tokenizer = EventTokenizer.from_pretrained(out / "tokenizer")  # saved with the data
    rows = [r for s in ds for r in ds[s]]
    assert sorted((r["source"], r["event_index"]) for r in rows) == [(s, i) for s in (0, 1) for i in range(150)]
    for r in rows[:40]:
        path = samples["signal" if r["source"] == 0 else "background"]
        enc = tokenizer(read_events(path, r["event_index"], r["event_index"] + 1))
        n = int(np.asarray(enc["attention_mask"]).sum())
        assert r["length"] == n
        assert r["input_ids"] == np.asarray(enc["input_ids"])[0, :n].tolist()
        assert r["token_type_ids"] == np.asarray(enc["token_type_ids"])[0, :n].tolist()
        assert r["labels"] == r["source"]  # signal file -> class 0 'signal'
        assert r["process_id"] == 1 - r["source"]


def test_tokenized_data_set_streams(tokenized):
    import datasets

    _, _, out = tokenized
    stream = datasets.load_dataset(str(out), split="validation", streaming=True)
    full = datasets.load_dataset(str(out), split="validation")
    assert [r["input_ids"] for r in stream] == full["input_ids"]


def _collator(tok_dir, **kwargs):
    from treasure_hf.hf.collators import EventPaddingCollator
    from treasure_hf.tokenization import EventTokenizer

    return EventPaddingCollator(EventTokenizer.from_pretrained(tok_dir).token_id_ranges(), **kwargs)


@pytest.mark.parametrize("max_length", [None, 9])
def test_shuffled_arrow_batches_are_the_row_batches_of_the_same_order(tokenized, max_length):
    """The numpy gather of ArrowBatches in a seeded random order (also on top of a
    dataset.shuffle() indices mapping) gives exactly the tensors of the per-row DataLoader the
    Trainer uses, fed the same order."""
    import datasets
    import torch
    from torch.utils.data import DataLoader

    from treasure_hf.hf.batches import IndexBatches, arrow_loader

    _, tok_dir, out = tokenized
    collate = _collator(tok_dir, max_length=max_length, keep=("labels", "process_id"))
    cols = ["input_ids", "token_type_ids", "labels", "process_id"]
    for ds in (
        datasets.load_dataset(str(out), split="train"),
        datasets.load_dataset(str(out), split="train").shuffle(seed=2).select(range(150)),
    ):
        order = [i for batch in IndexBatches(len(ds), 16, seed=11) for i in batch]
        assert sorted(order) == list(range(len(ds))) and order != sorted(order)
        fast = list(arrow_loader(ds, 16, collate, shuffle=True, seed=11, columns=cols))
        slow = list(DataLoader(ds.select_columns(cols), batch_size=16, sampler=order, collate_fn=collate))
        assert len(fast) == len(slow) == -(-len(ds) // 16)
        for a, b in zip(fast, slow):
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_index_batches_reshuffle_per_epoch_and_repeat_per_seed():
    from treasure_hf.hf.batches import IndexBatches

    sampler = IndexBatches(100, 32, seed=3, drop_last=True)
    first, second = list(sampler), list(sampler)  # the epoch advances after a full pass
    assert len(first) == len(sampler) == 3 and all(len(b) == 32 for b in first)
    assert first != second
    sampler.set_epoch(0)
    assert list(sampler) == first and list(IndexBatches(100, 32, seed=4, drop_last=True)) != first
    assert [len(b) for b in IndexBatches(100, 32, shuffle=False)] == [32, 32, 32, 4]
    assert [i for b in IndexBatches(100, 32, shuffle=False) for i in b] == list(range(100))


def test_arrow_batches_keep_the_column_types_and_reject_bad_indices(tokenized):
    import datasets

    from treasure_hf.hf.batches import ArrowBatches

    _, _, out = tokenized
    ds = datasets.load_dataset(str(out), split="validation")
    batches = ArrowBatches(ds, ("input_ids", "token_type_ids", "labels", "source"))
    got = batches.__getitems__([3, 0, 2])
    want = ds.with_format("arrow")[[3, 0, 2]].select(["input_ids", "token_type_ids", "labels", "source"])
    assert got.schema == want.schema and got.equals(want)
    assert batches[1].equals(ds.with_format("arrow")[1:2].select(got.column_names))
    with pytest.raises(IndexError):
        batches.__getitems__([len(ds)])


def test_streaming_block_shuffle_gives_every_event_once_in_a_seeded_order(tokenized):
    import datasets
    import torch

    from treasure_hf.hf.batches import stream_batches

    _, tok_dir, out = tokenized
    full = datasets.load_dataset(str(out), split="train")
    key = {(s, e): i for i, (s, e) in enumerate(zip(full["source"], full["event_index"]))}
    stream = datasets.load_dataset(str(out), split="train", streaming=True)

    def seen(seed, buffer):
        tables = list(stream_batches(stream, 16, lambda t: t, shuffle_buffer=buffer, seed=seed))
        assert all(t.num_rows == 16 for t in tables[:-1])
        return tables, [key[k] for t in tables for k in zip(t["source"].to_pylist(), t["event_index"].to_pylist())]

    tables, order = seen(4, 50)
    assert sorted(order) == list(range(len(full)))
    assert order != sorted(order) and order == seen(4, 50)[1] and order != seen(5, 50)[1]
    assert seen(0, 0)[1] == list(range(len(full)))  # no buffer: the stored order
    # the streamed batches pad to the tensors of the rows they hold
    collate = _collator(tok_dir, keep=("labels",))
    rows = [full[i] for i in order[:16]]
    a, b = collate(tables[0]), collate(rows)
    assert all(torch.equal(a[k], b[k]) for k in b)
