"""Stock `datasets` reads the common HDF5 file with no help from treasure_hf."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from treasure_hf import read_events
from treasure_hf.data.h5 import write_h5
from treasure_hf.data.synthetic import random_events

SCRIPT = """
import sys, json, datasets
ds = datasets.load_dataset("hdf5", data_files=sys.argv[1], split="train", cache_dir=sys.argv[2])
row = ds[3]
print(json.dumps({"n": len(ds), "groups": sorted(ds.features["common"].keys()),
                  "jet_pt": row["common"]["jets"]["pt"], "jet_mask": row["common"]["jets"]["mask"],
                  "met": row["common"]["met"]["pt"], "const_shape": list(np.shape(row["common"]["constituents"]["pt"]))}))
""".replace("import sys, json, datasets", "import sys, json, datasets\nimport numpy as np")


def test_load_dataset_hdf5_reads_the_common_format(tmp_path):
    padded = random_events(120, 7, sub_groups=("constituents",)).to_padded()
    write_h5(tmp_path / "events.h5", padded)
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "events.h5"), str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    import json

    got = json.loads(out.stdout.strip().splitlines()[-1])
    original = read_events(tmp_path / "events.h5")
    assert got["n"] == 120
    assert {"electrons", "jets", "met", "event", "constituents"} <= set(got["groups"])
    assert np.array_equal(np.float32(got["jet_pt"]), original["common/jets/pt"][3])
    assert got["jet_mask"] == original.mask("jets")[3].tolist()
    assert np.float32(got["met"]) == original["common/met/pt"][3]
    assert got["const_shape"] == [20, 50]
