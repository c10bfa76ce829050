import os
import pathlib

# One thread per test process: pytest-xdist runs one process per core, and small torch models
# run slower, not faster, when their threads compete for the same cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def testdata() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("TREASURE_TESTDATA", REPO.parent / "shared" / "testdata"))
    if not path.is_dir():
        pytest.skip(f"real experiment files not found at {path} (set TREASURE_TESTDATA)")
    return path
