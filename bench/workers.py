"""Celery processes for the benchmarks: a plain worker, or the Procfile's process types as a
platform runs them (the Procfile's own command line, through a shell)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import IO

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


def procfile(path: Path = REPO / "Procfile") -> dict[str, str]:
    """The Procfile's process types and their command lines."""
    found: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.startswith("#"):
            found[name.strip()] = command.strip()
    return found


def start_process(
    kind: str, env: dict[str, str], output: IO[bytes] | int = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    """The Procfile's `kind` as a platform starts it: its line run by a shell (variables such as
    ${WORKER_CONCURRENCY:-2} expanded) with this interpreter's scripts first on PATH. `env`
    (leading assignments of the line aside) is the process's whole environment. The process
    runs in a group of its own: end it with os.killpg on its pid (a worker's pool goes too)."""
    command = procfile()[kind]
    scripts = str(Path(sys.executable).parent)
    env = {**env, "PATH": scripts + os.pathsep + env.get("PATH", os.defpath)}
    # `exec env ...`: the shell becomes the process (its pid is the process's), assignments at
    # the start of the line included.
    return subprocess.Popen(
        ["/bin/sh", "-c", f"exec env {command}"],
        cwd=REPO,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT if output is not subprocess.DEVNULL else subprocess.DEVNULL,
        start_new_session=True,
    )
