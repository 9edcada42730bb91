"""A worker survives its Redis broker restarting while a task runs, whatever connection of the
worker notices first.

The worker holds two kinds of Redis connection: the task consumer's BRPOP and the pub/sub
connection of its remote-control mailbox. When the pub/sub one fails first, the BRPOP is still
waiting for its reply; tearing the lost connection down then leaves the consumer's channel to be
closed after kombu has released its transport, and that close (and the running task's ack,
later) used to fail with AttributeError in kombu's Redis transport and stop the worker.

Here a Redis of the test's own (a free port, so nobody else's Redis restarts) drops the mailbox's
pub/sub connection and shuts down in the same instant, while a task holds the worker; then it
comes back empty. The worker must stay up, finish the held task and take new work.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery

from tests.conftest import REPO
from tests.e2e.conftest import wait_for
from tests.e2e.holding_app import HOLD_TASK

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A redis-server of this test's own, without persistence, that can be restarted."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = ["--bind", "127.0.0.1", "--port", str(self.port), "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.folder)]
        self.proc = subprocess.Popen(
            ["redis-server", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, "the test's redis to answer", 30)

    def _answers(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url).ping())
        except redis.ConnectionError:
            return False

    def drop_pubsub_and_shut_down(self) -> None:
        """Close every pub/sub client, then shut down: both commands go in one write, so the
        server runs them back to back and the pub/sub sockets close first."""
        pipe = redis.Redis.from_url(self.url).pipeline(transaction=False)
        pipe.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        pipe.execute_command("SHUTDOWN", "NOSAVE")
        with contextlib.suppress(redis.ConnectionError):
            pipe.execute()  # the server closes the connection as it goes down
        assert self.proc is not None
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _worker(tmp_path: Path, broker_url: str) -> tuple[subprocess.Popen[bytes], Path]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("X_", "REDIS", "BROKER"))}
    env.update(
        REDIS_URL=broker_url,
        DATABASE_URL=f"sqlite:///{tmp_path / 'socialcare.db'}",
        SOCIALCARE_DATA_DIR=str(tmp_path / "var"),
        PYTHONPATH=str(REPO),
        LOG_FORMAT="json",  # one JSON record a line: the test reads their levels
        LOG_LEVEL="INFO",
    )
    log = tmp_path / "worker.log"
    cmd = [sys.executable, "-m", "celery", "-A", "tests.e2e.holding_app", "worker"]
    cmd += ["--concurrency=2", "--queues=socialcare", "--without-gossip", "--without-mingle"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*cmd, "--loglevel=INFO"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    return proc, log


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _runs(folder: Path, name: str) -> int:
    """How many times the task `name` started."""
    runs = folder / f"{name}.runs"
    return len(runs.read_text().splitlines()) if runs.exists() else 0


def test_worker_survives_a_broker_restart_noticed_first_on_its_pubsub_connection(
    tmp_path: Path, broker: PrivateRedis
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    client = Celery("client", broker=broker.url, set_as_current=False)
    client.conf.broker_connection_retry_on_startup = True
    worker, log = _worker(tmp_path, broker.url)

    def alive() -> bool:
        assert worker.poll() is None, f"the worker stopped:\n{log.read_text()[-4000:]}"
        return True

    def detail() -> str:
        return log.read_text(errors="replace")[-4000:]

    try:
        client.send_task(HOLD_TASK, args=[str(marks), "first"], queue="socialcare")
        wait_for(lambda: alive() and _runs(marks, "first") == 1, "the first task", 120, detail)
        # The consumer has room for one more message (two processes, prefetch 1 each), so
        # its BRPOP is out again, waiting, when the broker goes.
        time.sleep(1.0)
        broker.drop_pubsub_and_shut_down()
        wait_for(
            lambda: alive() and "Connection to broker lost" in log.read_text(errors="replace"),
            "the worker to notice the broker went away",
            30,
            detail,
        )
        broker.start()
        # The first task finishes after its connection was lost: its ack goes to a channel
        # whose transport kombu has released.
        (marks / "first.release").write_text("go")
        wait_for(lambda: alive() and (marks / "first.done").exists(), "the first task", 30)
        (marks / "second.release").write_text("go")
        client.send_task(HOLD_TASK, args=[str(marks), "second"], queue="socialcare")
        wait_for(
            lambda: alive() and (marks / "second.done").exists(),
            "new work after the broker came back",
            120,
            detail,
        )
        time.sleep(2.0)  # time for the first task's ack, and anything that would follow it
        assert alive()
        text = log.read_text(errors="replace")
        assert '"level": "CRITICAL"' not in text, text[-4000:]  # Unrecoverable error: ...
        # The broker came back empty: nothing was delivered twice.
        assert _runs(marks, "first") == 1 and _runs(marks, "second") == 1
    finally:
        _stop(worker)
