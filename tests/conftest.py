import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def testdata() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("TREASURE_TESTDATA", REPO.parent / "shared" / "testdata"))
    if not path.is_dir():
        pytest.skip(f"real experiment files not found at {path} (set TREASURE_TESTDATA)")
    return path
