"""Run independent tasks (one input file, one generator shard) serially, on a Dask LocalCluster
of ``workers`` processes, or on a running Dask scheduler at ``scheduler``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Generic, Sequence, TypeVar

from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class TaskResult(Generic[T]):
    task: T
    value: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def map_tasks(fn: Callable[[T], Any], tasks: Sequence[T], *, workers: int = 1, scheduler: str | None = None,
              keep_going: bool = False, desc: str = "tasks", progress: bool = True) -> list[TaskResult[T]]:
    """Apply ``fn`` to every task and return the results in task order.

    With ``keep_going=False`` the first failure is raised (after the running tasks are cancelled);
    otherwise failures are returned in their :class:`TaskResult`. ``fn`` must be importable by
    name (a module-level function) when Dask is used.
    """
    results: list[TaskResult[T]] = [TaskResult(t) for t in tasks]
    bar = tqdm(total=len(tasks), desc=desc, unit="task", disable=not progress)
    if scheduler is None and workers <= 1:
        for r in results:
            try:
                r.value = fn(r.task)
            except Exception as exc:  # noqa: BLE001 - recorded or re-raised below
                if not keep_going:
                    bar.close()
                    raise
                logger.error("%s failed: %s", r.task, exc)
                r.error = exc
            bar.update()
        bar.close()
        return results

    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    logger.info("running %d tasks on %s", len(tasks), client)
    try:
        futures = {client.submit(fn, r.task, pure=False): i for i, r in enumerate(results)}
        for future in as_completed(futures):
            r = results[futures[future]]
            try:
                r.value = future.result()
            except Exception as exc:  # noqa: BLE001 - recorded or re-raised below
                if not keep_going:
                    client.cancel(list(futures))
                    raise
                logger.error("%s failed: %s", r.task, exc)
                r.error = exc
            bar.update()
    finally:
        bar.close()
        client.close()
        if cluster is not None:
            cluster.close()
    return results
