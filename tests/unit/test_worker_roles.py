"""Two kinds of worker: scoring on a queue of its own, served by the Procfile's scorer with torch
threads to match its cores; everything else on queues the Procfile's worker serves, torch at
one thread. Checked in the Celery settings, the Procfile, and real worker processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.workers import procfile, start_process
from socialcare.config import load_settings
from tests.conftest import REPO
from workers.app import CONTROL_QUEUE, IO_QUEUES, QUEUE, SCORE_QUEUE, create_app
from workers.roles import available_cores, scorer_threads, torch_threads


@pytest.fixture
def app(monkeypatch, tmp_path):
    monkeypatch.setenv("SOCIALCARE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    return create_app(load_settings())


def _option(command: str, name: str) -> str:
    found = re.search(rf"--{name}=(\S+)", command)
    assert found is not None, (name, command)
    return found.group(1)


def test_every_task_goes_to_a_queue_one_of_the_procfiles_workers_consumes(app):
    import workers.tasks  # noqa: F401 - registers the tasks on the shared app
    from workers.app import app as shared

    lines = procfile()
    consumed = {
        kind: set(_option(lines[kind], "queues").split(",")) for kind in ("worker", "scorer")
    }
    assert consumed == {"worker": set(IO_QUEUES), "scorer": {SCORE_QUEUE}}
    assert {q.name for q in app.conf.task_queues} == {QUEUE, CONTROL_QUEUE, SCORE_QUEUE}
    routes = app.conf.task_routes
    names = [n for n in shared.tasks if n.startswith("socialcare.")]
    assert len(names) >= 9
    for name in names:
        queue = routes.get(name, {}).get("queue", app.conf.task_default_queue)
        kind = "scorer" if name == "socialcare.score_posts" else "worker"
        assert queue in consumed[kind], (name, queue)


def test_the_scorer_takes_one_batch_at_a_time_and_hands_it_back_when_stopped():
    scorer = procfile()["scorer"]
    assert _option(scorer, "concurrency") == "1"
    assert _option(scorer, "prefetch-multiplier") == "1"
    assert "REMAP_SIGTERM=SIGQUIT" in scorer
    assert "${WORKER_CONCURRENCY:-2}" in procfile()["worker"]


@pytest.mark.parametrize(
    ("queues", "concurrency", "configured", "threads"),
    [
        ([SCORE_QUEUE], 1, 6, 6),  # the Procfile's scorer: all of them
        ([SCORE_QUEUE], 2, 6, 3),  # two pool processes share them
        ([SCORE_QUEUE], 8, 2, 1),  # never fewer than one
        ([QUEUE, CONTROL_QUEUE, SCORE_QUEUE], 2, 4, 2),  # one worker for everything
        ([QUEUE, CONTROL_QUEUE], 4, 6, 1),  # I/O: one each, however many cores
        ([CONTROL_QUEUE], 1, 6, 1),
    ],
)
def test_torch_threads_follow_the_queues_a_worker_consumes(
    queues, concurrency, configured, threads, monkeypatch
):
    monkeypatch.setenv("SCORER_THREADS", str(configured))
    settings = load_settings()
    got = torch_threads(
        queues=queues, score_queue=SCORE_QUEUE, concurrency=concurrency, settings=settings
    )
    assert got == threads


def test_scorer_threads_default_to_the_cores_this_process_may_use(monkeypatch):
    monkeypatch.delenv("SCORER_THREADS", raising=False)
    cores = available_cores()
    assert 1 <= cores <= (os.cpu_count() or 1)
    assert cores <= len(os.sched_getaffinity(0))
    assert scorer_threads(load_settings()) == cores


def test_scorer_threads_below_one_are_refused(monkeypatch):
    from socialcare.errors import ConfigError

    monkeypatch.setenv("SCORER_THREADS", "0")
    with pytest.raises((ConfigError, ValueError), match="SCORER_THREADS"):
        load_settings()


def test_torch_imported_after_the_limit_runs_one_thread():
    code = (
        "from workers.roles import limit_threads; limit_threads(1); "
        "import torch; print(torch.get_num_threads())"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("OMP_NUM_THREADS", None)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"


def _wait(log: Path, pattern: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if re.search(pattern, text):
            return text
        assert proc.poll() is None, text[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"no {pattern!r} in {log}:\n{log.read_text(errors='replace')[-3000:]}")


def test_the_procfiles_scorer_and_worker_split_the_work_over_the_embedded_broker(
    tmp_path, monkeypatch
):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS", "BROKER"))}
    env.update(
        SOCIALCARE_DATA_DIR=str(tmp_path / "var"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'socialcare.db'}",
        PYTHONPATH=str(REPO),
        LOG_FORMAT="text",
        LOG_LEVEL="INFO",
        SCORER_THREADS="3",
        WORKER_CONCURRENCY="2",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    logs = {kind: tmp_path / f"{kind}.log" for kind in ("scorer", "worker")}
    outs = {kind: logs[kind].open("wb") for kind in logs}
    procs = {kind: start_process(kind, env, outs[kind]) for kind in logs}
    try:
        # The scorer's torch runs SCORER_THREADS threads; each I/O pool process's runs one.
        _wait(logs["scorer"], r"scorer process ready: torch threads 3\b", procs["scorer"])
        text = _wait(
            logs["worker"], r"(?s)(worker process ready: torch threads 1\b.*){2}", procs["worker"]
        )
        assert "torch threads 3" not in text
        _wait(logs["worker"], r"ready\.", procs["worker"])
        _wait(logs["scorer"], r"ready\.", procs["scorer"])
        for name in ("REDIS_URL", "BROKER_URL"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("SOCIALCARE_DATA_DIR", env["SOCIALCARE_DATA_DIR"])
        sender = create_app(load_settings())  # the same embedded broker's folder
        sender.send_task("socialcare.score_posts", args=[[]])
        sender.send_task("socialcare.poll_due")
        sender.close()
        received = r"socialcare\.{}\[\S+\] received"
        _wait(logs["scorer"], received.format("score_posts"), procs["scorer"])
        # Its first task loads torch and gives it SCORER_THREADS threads.
        _wait(logs["scorer"], r"scorer process: torch runs 3 threads", procs["scorer"])
        _wait(logs["worker"], received.format("poll_due"), procs["worker"])
        time.sleep(1.0)  # time enough for a wrong delivery to show
        assert not re.search(received.format("poll_due"), logs["scorer"].read_text())
        assert not re.search(received.format("score_posts"), logs["worker"].read_text())
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for out in outs.values():
            out.close()
