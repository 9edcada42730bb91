"""`socialcare run` as a new user runs it: no servers, no credentials, the queue fills."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, resp.read()
    except OSError:
        return 0, b""


def test_the_main_job_fills_the_queue_within_a_minute_and_stops_gracefully(tmp_path):
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("X_", "REDIS", "BROKER", "DATABASE", "REPLAY", "PORT"))
    }
    env.update(SOCIALCARE_DATA_DIR=str(tmp_path / "var"), PORT=str(port), PYTHONPATH=str(REPO))
    log = (tmp_path / "run.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "socialcare", "run"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        start = time.monotonic()
        cases: list[dict] = []
        while time.monotonic() - start < 60 and not cases:
            assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            status, body = _get(f"http://127.0.0.1:{port}/api/queue")
            if status == 200:
                cases = json.loads(body)
            time.sleep(1)
        filled = time.monotonic() - start
        output = (tmp_path / "run.log").read_text()
        assert cases, output[-3000:]
        assert all(c["reasons"] and c["team"] and c["priority"] for c in cases)
        assert f"http://127.0.0.1:{port}/" in output
        assert "socialcare claim-next --agent demo" in output
        status, page = _get(f"http://127.0.0.1:{port}/")
        assert status == 200 and b"socialcare queue" in page
        print(f"queue filled {filled:.1f}s after start")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0
