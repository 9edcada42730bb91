"""`socialcare run` as a new user runs it: no servers, no credentials, the queue fills."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from http.cookiejar import CookieJar

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_JAR = CookieJar()
_OPENER = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(_JAR))


def _get(url: str) -> tuple[int, bytes]:
    try:
        with _OPENER.open(url, timeout=2) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except OSError:
        return 0, b""


def _stop(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM, as a platform stops the process; its exit code (killed and raised after 30 s)."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def _log_in(base: str, handle: str, password: str) -> None:
    """Through the login form, as a browser does (its CSRF cookie and field)."""
    status, page = _get(f"{base}/login")
    assert status == 200
    field = re.search(rb'name="csrf_token" value="([^"]+)"', page)
    assert field is not None
    data = urllib.parse.urlencode(
        {"handle": handle, "password": password, "csrf_token": field.group(1).decode()}
    ).encode()
    with _OPENER.open(f"{base}/login", data=data, timeout=5) as resp:
        assert resp.status == 200 and resp.url == f"{base}/"


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
        base = f"http://127.0.0.1:{port}"
        admin = None
        while time.monotonic() - start < 60 and admin is None:
            assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            admin = re.search(
                r"as 'admin' with the password\n  (\S+)", (tmp_path / "run.log").read_text()
            )
            time.sleep(0.5)
        assert admin is not None, "the first start prints the admin's generated password"
        while time.monotonic() - start < 60 and _get(f"{base}/healthz")[0] != 200:
            time.sleep(0.5)
        assert _get(f"{base}/api/queue")[0] == 401  # nothing is open to the anonymous
        _log_in(base, "admin", admin.group(1))
        cases: list[dict] = []
        while time.monotonic() - start < 60 and not cases:
            assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            status, body = _get(f"{base}/api/queue")
            if status == 200:
                cases = json.loads(body)
            time.sleep(1)
        filled = time.monotonic() - start
        output = (tmp_path / "run.log").read_text()
        assert cases, output[-3000:]
        assert all(c["reasons"] and c["team"] and c["priority"] for c in cases)
        # The replay runs on today's clock: its cases opened in the hours before now.
        assert "on today's clock" in output
        now = datetime.now(UTC)
        opened = [datetime.fromisoformat(c["opened_at"]) for c in cases]
        assert all(now - timedelta(hours=7) < o <= now for o in opened), (now, min(opened))
        assert f"http://127.0.0.1:{port}/" in output
        assert "socialcare claim-next --agent demo" in output
        status, page = _get(f"http://127.0.0.1:{port}/")
        assert status == 200 and b"socialcare queue" in page
        print(f"queue filled {filled:.1f}s after start")
    finally:
        code = _stop(proc)
    assert code == 0
