"""rediss:// as platforms give it: a TLS Redis server (started here with a self-signed
certificate) carries Celery messages when REDIS_TLS_VERIFY=none, and is refused by default."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from socialcare.config import load_settings
from socialcare.ops.health import readiness


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[str]:
    key, cert = tmp_path / "redis.key", tmp_path / "redis.crt"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    server = subprocess.Popen(
        [
            *("redis-server", "--port", "0", "--tls-port", str(port)),
            *("--tls-cert-file", str(cert), "--tls-key-file", str(key)),
            *("--tls-auth-clients", "no", "--save", "", "--appendonly", "no"),
            *("--dir", str(tmp_path)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"rediss://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_rediss_url_carries_task_messages_when_told_the_certificate_is_self_signed(tls_redis):
    from kombu import Connection

    settings = load_settings(REDIS_URL=tls_redis, REDIS_TLS_VERIFY="none")
    assert settings.celery_broker_url.endswith("?ssl_cert_reqs=none")
    assert readiness(settings)["broker"] == "ok"
    with Connection(settings.celery_broker_url) as conn:
        queue = conn.SimpleQueue("socialcare-tls-check")
        queue.put({"task": "socialcare.sweep", "args": []})
        message = queue.get(timeout=5)
        assert message.payload == {"task": "socialcare.sweep", "args": []}
        message.ack()
        queue.close()


def test_by_default_an_unverifiable_certificate_is_refused(tls_redis):
    settings = load_settings(REDIS_URL=tls_redis)
    assert settings.celery_broker_url.endswith("?ssl_cert_reqs=required")
    status = readiness(settings)["broker"]
    assert status.startswith("error") and "certificate" in status.lower()


def test_a_url_that_sets_its_own_certificate_check_keeps_it():
    url = "rediss://:secret@redis.example.com:6380/0?ssl_cert_reqs=optional"
    assert load_settings(REDIS_URL=url, REDIS_TLS_VERIFY="none").celery_broker_url == url
