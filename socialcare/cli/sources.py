"""`socialcare sources status`, `socialcare accounts add PLATFORM HANDLE`, `socialcare poll`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import typer

from socialcare.display import one_line, terminal_safe
from socialcare.errors import NotFound
from socialcare.ids import in_range

sources_app = typer.Typer(help="Ingestion health of the polled accounts.", no_args_is_help=True)


# A poll that made no request (the account is paused or failing, another worker holds its
# lease, its rate window or read cap is spent) exits with EX_TEMPFAIL: try again later.
EX_TEMPFAIL = 75


def _adder(platform: str, normalise: Callable[[str], str] = str) -> Callable[..., str]:
    def add(targets: list[str], speedup: float) -> str:
        from socialcare.db import session_scope
        from socialcare.posts.service import ensure_account

        if len(targets) != 1:
            raise ValueError(f"accounts add {platform} takes one HANDLE, not {len(targets)}")
        with session_scope() as session:
            account = ensure_account(
                session=session,
                platform=platform,
                handle=normalise(targets[0].lstrip("@")),
                source=platform,
                polled=True,
            )
            return f"account {account.id}: {platform} @{one_line(account.handle)}"

    return add


def _add_replay(targets: list[str], speedup: float) -> str:
    """A replay feed: TWCS CSV files streamed as live mentions at a speed-up."""
    from socialcare.db import session_scope
    from socialcare.flows.seed import ensure_replay_feed

    if not targets:
        raise ValueError("accounts add replay takes one or more TWCS CSV FILEs")
    files = [Path(f) for f in targets]
    for path in files:
        if not path.is_file():
            raise ValueError(f"no file {one_line(path)}")
    with session_scope() as session:
        account = ensure_replay_feed(session=session, files=files, speedup=speedup)
        return f"account {account.id}: replay {one_line(account.handle)} at {speedup}x"


# `accounts add PLATFORM HANDLE`: one adder per platform, each reading its credentials from
# the environment when it polls (X_*, MASTODON_*, BLUESKY_*). Platforms join by adding an entry.
ACCOUNT_ADDERS: dict[str, Callable[..., str]] = {
    "x": _adder("x"),
    "mastodon": _adder("mastodon"),
    "bluesky": _adder("bluesky", str.lower),  # Bluesky handles are domain names
    "replay": _add_replay,
}


def add_account(
    platform: str = typer.Argument(..., help="x, mastodon, bluesky or replay"),
    targets: list[str] = typer.Argument(
        ..., metavar="HANDLE | FILE...", help="the account's handle; for replay, TWCS CSV files"
    ),
    speedup: float = typer.Option(
        60.0, min=0.001, help="replay only: virtual seconds per wall second"
    ),
) -> None:
    """Monitor a brand account on a platform (credentials come from the environment), or
    replay TWCS files as live mentions (`accounts add replay FILE...`)."""
    adder = ACCOUNT_ADDERS.get(platform.lower())
    if adder is None:
        raise ValueError(
            f"unknown platform {one_line(platform)!r}; known: {', '.join(sorted(ACCOUNT_ADDERS))}"
        )
    typer.echo(adder(targets, speedup))


@sources_app.command("status")
def sources_status(
    fmt: str = typer.Option("table", "--format", help="table or json"),
) -> None:
    """Per polled account: posts (total, last hour), last poll, lag, requests left and reset,
    billed reads today and this month, projected monthly cost, open incidents, last error."""
    from socialcare.config import get_settings
    from socialcare.db import session_scope, utcnow
    from socialcare.ingest.status import format_table, ingestion_status

    if fmt not in ("table", "json"):
        raise typer.BadParameter("table or json", param_hint="--format")
    with session_scope() as session:
        rows = ingestion_status(session=session, now=utcnow(), settings=get_settings())
    # JSON escapes control characters itself; the table shows them as marks.
    typer.echo(json.dumps(rows, indent=2) if fmt == "json" else terminal_safe(format_table(rows)))


def resolve_account(account: str | None, account_id: int | None) -> int:
    """An existing account given by id or handle (with or without @); NotFound otherwise."""
    from sqlalchemy import select

    from socialcare.db import session_scope
    from socialcare.posts.models import Account

    if account_id is None and account is None:
        raise ValueError("name the account: its id or handle (see `socialcare accounts list`)")
    if account_id is None and account is not None and account.isdigit():
        account_id = int(account)
    with session_scope() as session:
        if account_id is not None:
            if in_range(account_id) and session.get(Account, account_id) is not None:
                return account_id
            raise NotFound(f"no account {account_id}")
        assert account is not None
        ids = list(
            session.execute(
                select(Account.id).where(Account.handle == account.lstrip("@"))
            ).scalars()
        )
    if not ids:
        raise NotFound(f"no account with the handle {one_line(account)!r}")
    if len(ids) > 1:
        raise ValueError(f"{len(ids)} accounts have the handle {one_line(account)!r}; give the id")
    return ids[0]


def poll_command(account: str | None, account_id: int | None, once: bool) -> None:
    """Poll one account now, in this process, and score and route what it finds; without
    --once, again whenever the account is due, until interrupted.

    --once exits 0 after a poll, 1 when the platform failed it, and 75 (EX_TEMPFAIL) when it
    made no request at all, saying why (a paused or failing account, another worker's lease, a
    spent rate window or read cap)."""
    from socialcare.db import session_scope, utcnow
    from socialcare.flows import InlineRunner
    from socialcare.flows.polling import poll
    from socialcare.posts.models import Account

    target = resolve_account(account, account_id)
    while True:
        runner = InlineRunner()
        result = poll(target, enqueue=runner)
        runner.drain()
        if result.skipped:
            typer.echo(f"poll skipped: {one_line(result.skipped)}", err=True)
        elif result.error:
            typer.echo(
                f"error: poll of account {target} failed after storing {result.stored} new "
                f"posts: {one_line(result.error)}",
                err=True,
            )
        else:
            typer.echo(f"stored {result.stored} new posts")
        if once:
            if result.skipped:
                raise typer.Exit(EX_TEMPFAIL)
            if result.error:
                raise typer.Exit(1)
            return
        with session_scope() as session:
            row = session.get(Account, target)
            due = row.next_poll_at if row is not None else None
        time.sleep(max(1.0, (due - utcnow()).total_seconds()) if due else 60.0)
