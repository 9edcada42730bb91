"""The main job: migrate, set up, then run worker, scorer, beat and web as child processes.

As the Procfile's process types: the worker serves the I/O queues (polls, routing, replies,
digests) with `concurrency` processes, the scorer serves the score queue with one process whose
torch threads match the cores (SCORER_THREADS), so a model batch never delays a reply.

Stopping (Ctrl-C, or SIGTERM as a platform sends it) takes under 10 seconds: each child gets one
SIGTERM from here (they run in their own process groups, so a terminal's Ctrl-C does not reach
them twice); the worker stops its running tasks and hands their messages back to the broker
(acks are late); beat hands its lease over; the web server ends its event streams at once
instead of waiting for browsers to hang up. Whatever still runs at STOP_DEADLINE is killed: a
task is one transaction moved by compare-and-set, so one cut short is redone whole, and the
sweep re-enqueues any step whose message was lost with a killed worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from socialcare.config import get_settings
from socialcare.db import session_scope
from socialcare.flows.seed import ensure_demo_agent, ensure_replay_feed, ensure_x_account
from socialcare.migrations import upgrade
from socialcare.people.service import ensure_first_admin
from socialcare.routing.service import ensure_default_teams

# Seconds from the signal until every child is gone (killed if need be): two Celery workers
# stopping their pools at once on two busy cores can take most of it, and a kill still needs
# time to be reaped within the 10 seconds a person or platform waits.
STOP_DEADLINE = 8.0
WORKER_SOFT_SHUTDOWN = 0.0  # running tasks go back to the broker at once (each is redone whole)
WEB_GRACE = 3.0  # open requests get this long once the web server stops


def _worker(name: str, queues: list[str], concurrency: int, *extra: str) -> list[str]:
    """A Celery worker consuming queues, as the Procfile's line of the same name runs it."""
    return [
        sys.executable,
        *("-m", "celery", "-A", "workers.app", "worker", "--loglevel=INFO"),
        f"--queues={','.join(queues)}",
        f"--concurrency={concurrency}",
        *extra,
        f"--hostname={name}@%h",
        "--without-gossip",
        "--without-mingle",
        # Celery settings after "--": shorter than the Procfile worker's soft shutdown, so
        # the whole job stops within STOP_DEADLINE.
        "--",
        f"worker.soft_shutdown_timeout={WORKER_SOFT_SHUTDOWN:g}",
    ]


def _children(port: int, concurrency: int) -> dict[str, list[str]]:
    from workers.app import IO_QUEUES, SCORE_QUEUE

    py = sys.executable
    return {
        "worker": _worker("worker", list(IO_QUEUES), concurrency),
        "scorer": _worker("scorer", [SCORE_QUEUE], 1, "--prefetch-multiplier=1"),
        "beat": [py, "-m", "celery", "-A", "workers.app", "beat", "--loglevel=INFO"],
        "web": [py, "-m", "socialcare", "web", "--port", str(port), "--grace", f"{WEB_GRACE:g}"],
    }


def prepare() -> str:
    """Migrate, create teams, a demo lead and (once) an admin, and the account to poll; returns
    what it polls."""
    settings = get_settings()
    upgrade(settings)
    with session_scope(settings) as session:
        ensure_default_teams(session=session)
        ensure_demo_agent(session=session)
        admin = ensure_first_admin(session=session)
        if admin is not None:
            print(
                f"\nFirst start: log in to the web workspace as {admin[0]!r} with the password\n"
                f"  {admin[1]}\n"
                "(shown only now; `socialcare agents password admin` sets a new one).",
                flush=True,
            )
        if settings.has_x_credentials and settings.x_brand_handle:
            account = ensure_x_account(session=session, settings=settings)
            return f"X mentions of @{account.handle}"
        today = settings.replay_clock == "today"
        feed = ensure_replay_feed(
            session=session,
            files=settings.replay_files,
            speedup=settings.replay_speedup,
            today=today,
            backfill_seconds=settings.replay_backfill_seconds,
        )
        names = ", ".join(Path(f).name for f in feed.config["files"])
        if today:
            return f"a replay of {names} on today's clock"
        return f"a replay of {names} at {settings.replay_speedup:g}x"


def run_all(*, port: int | None, concurrency: int) -> int:
    """Run until interrupted; on SIGINT or SIGTERM stop every child gracefully."""
    settings = get_settings()
    port = port or settings.port
    env = dict(os.environ)
    env["SOCIALCARE_DATA_DIR"] = str(settings.data_dir.resolve())
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("LOG_FORMAT", "text")  # a person reads this terminal; set json to ship logs
    env.setdefault("REMAP_SIGTERM", "SIGQUIT")  # soft shutdown on SIGTERM (see workers/app.py)
    what = prepare()
    # process_group=0: a terminal's Ctrl-C reaches this process only; each child then gets one
    # SIGTERM from stop_children (two signals would turn a graceful stop into a hasty one).
    procs = {
        name: subprocess.Popen(cmd, env=env, process_group=0)
        for name, cmd in _children(port, concurrency).items()
    }
    stopping = False
    signalled = 0.0

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping, signalled
        if not stopping:
            signalled = time.monotonic()
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    base = settings.base_url or f"http://127.0.0.1:{port}"
    print(
        f"\nsocialcare is running: polling {what}.\n"
        f"  queue:    {base}/ (log in as an admin or agent; `socialcare agents add` adds one)\n"
        f"  latency:  {base}/latency\n"
        "  act from another shell (same directory):\n"
        "    socialcare queue\n"
        "    socialcare claim-next --agent demo\n"
        "    socialcare reply CASE_ID --agent demo --text 'Sorry about that, we are on it.'\n"
        "    socialcare resolve CASE_ID --agent demo\n"
        "    socialcare latency --by brand\n"
        "  Ctrl-C stops everything.\n",
        flush=True,
    )
    code = 0
    while not stopping:
        for name, proc in procs.items():
            if proc.poll() is not None:
                print(f"{name} exited with {proc.returncode}; stopping", file=sys.stderr)
                stopping, code = True, 1
        time.sleep(0.5)
    stop_children(procs, (signalled or time.monotonic()) + STOP_DEADLINE)
    return code


def stop_children(procs: dict[str, subprocess.Popen[bytes]], deadline: float) -> None:
    """SIGTERM to each child still running; any left at the deadline is killed (with the
    processes it started), and named."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for name, proc in procs.items():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop in time; killed", file=sys.stderr, flush=True)
            # Its whole process group: a worker's pool processes go with it.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
