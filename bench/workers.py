"""Celery worker processes for the benchmarks: one process, one task at a time, quiet."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A worker with concurrency 1 on the settings in env, its output discarded."""
    return subprocess.Popen(
        [
            sys.executable,
            *("-m", "celery", "-A", "workers.app", "worker", "--concurrency=1"),
            *("--without-gossip", "--without-mingle", "--loglevel=WARNING"),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
