"""What kind of worker a process is, from the queues it consumes, and its torch threads.

A scorer (it consumes the score queue) runs model batches: its pool processes share
SCORER_THREADS torch threads (by default the cores this machine lets it use), so one scorer
process with concurrency 1 gets them all. Any other worker does I/O (polls, routing, replies,
digests) and never waits behind a model batch: torch, should it ever be imported there, runs
one thread, so many such processes never oversubscribe the cores a scorer computes on.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable

from socialcare.config import Settings

log = logging.getLogger(__name__)

# The variables the math libraries under torch read when they start (OpenMP, MKL, OpenBLAS).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def available_cores() -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup CPU quota."""
    try:
        from celery.utils.sysinfo import cpu_budget

        count: int = cpu_budget(use_cgroup_quota=True).count
        return max(1, count)
    except (ImportError, OSError):  # an older Celery, or no /proc: affinity, else the count
        if hasattr(os, "sched_getaffinity"):
            return max(1, len(os.sched_getaffinity(0)))
        return max(1, os.cpu_count() or 1)


def scorer_threads(settings: Settings) -> int:
    """SCORER_THREADS, or the available cores when it is unset."""
    return settings.scorer_threads or available_cores()


def torch_threads(
    *, queues: Iterable[str], score_queue: str, concurrency: int, settings: Settings
) -> int:
    """Torch threads for each pool process of a worker consuming `queues`.

    A scorer's processes split SCORER_THREADS between them (at least one each); a worker that
    does not consume the score queue gets one thread per process.
    """
    if score_queue not in set(queues):
        return 1
    return max(1, scorer_threads(settings) // max(1, concurrency))


def limit_threads(threads: int) -> None:
    """Run torch (and the libraries under it) with `threads` threads in this process.

    The environment is read by those libraries when they load, so it covers a later import;
    torch already loaded is told directly.
    """
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def set_up_scorer(threads: int) -> int:
    """Load torch in a scorer's pool process and give it `threads` threads; returns the
    threads torch now runs. Called as its first task starts, not while the process starts: a
    process still starting does not stop when its worker does, and loading torch is slow."""
    limit_threads(threads)
    import torch

    torch.set_num_threads(threads)
    return int(torch.get_num_threads())
