"""The Dask LocalCluster that conversion, generation, the benchmark and the service run on."""

from __future__ import annotations

import os

import pytest

from treasure_hf.parallel import dask_client, iter_tasks


@pytest.mark.skipif("MALLOC_TRIM_THRESHOLD_" in os.environ, reason="the caller's environment sets it")
def test_local_workers_keep_glibcs_adaptive_malloc_and_one_thread():
    """Dask's 64 KiB trim threshold made a fine-tuning on a worker 1.8x slower: it is not set."""
    with dask_client(1, None) as client:
        assert client.submit(os.getenv, "MALLOC_TRIM_THRESHOLD_").result() is None
        assert client.submit(os.getenv, "OMP_NUM_THREADS").result() == "1"


def test_tasks_come_back_in_order_with_their_failures():
    results = list(iter_tasks(int, ["1", "x", "3"], workers=2, keep_going=True, progress=False))
    assert [r.value for r in results if r.ok] == [1, 3]
    assert [r.task for r in results if not r.ok] == ["x"] and isinstance(results[1].error, ValueError)
