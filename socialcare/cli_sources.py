"""`socialcare sources status`, `socialcare accounts add PLATFORM HANDLE`, `socialcare poll`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import typer

from socialcare.errors import ConfigError

sources_app = typer.Typer(help="Ingestion health of the polled accounts.", no_args_is_help=True)


def _adder(platform: str, normalise: Callable[[str], str] = str) -> Callable[[str], str]:
    def add(handle: str) -> str:
        from socialcare.db import session_scope
        from socialcare.posts.service import ensure_account

        with session_scope() as session:
            account = ensure_account(
                session=session,
                platform=platform,
                handle=normalise(handle.lstrip("@")),
                source=platform,
                polled=True,
            )
            return f"account {account.id}: {platform} @{account.handle}"

    return add


# `accounts add PLATFORM HANDLE`: one adder per platform, each reading its credentials from
# the environment when it polls (X_*, MASTODON_*, BLUESKY_*). Platforms join by adding an entry.
ACCOUNT_ADDERS: dict[str, Callable[[str], str]] = {
    "x": _adder("x"),
    "mastodon": _adder("mastodon"),
    "bluesky": _adder("bluesky", str.lower),  # Bluesky handles are domain names
}


def add_account(platform: str, handle: str) -> None:
    """Monitor a brand account on a platform (credentials come from the environment)."""
    adder = ACCOUNT_ADDERS.get(platform.lower())
    if adder is None:
        raise typer.BadParameter(
            f"unknown platform {platform!r}; known: {', '.join(sorted(ACCOUNT_ADDERS))}",
            param_hint="PLATFORM",
        )
    typer.echo(adder(handle))


@sources_app.command("status")
def sources_status(
    fmt: str = typer.Option("table", "--format", help="table or json"),
) -> None:
    """Per polled account: posts (total, last hour), last poll, lag, requests left and reset,
    billed reads today and this month, projected monthly cost, open incidents, last error."""
    from socialcare.config import get_settings
    from socialcare.db import session_scope, utcnow
    from socialcare.sources.status import format_table, ingestion_status

    if fmt not in ("table", "json"):
        raise typer.BadParameter("table or json", param_hint="--format")
    with session_scope() as session:
        rows = ingestion_status(session=session, now=utcnow(), settings=get_settings())
    typer.echo(json.dumps(rows, indent=2) if fmt == "json" else format_table(rows))


def resolve_account(account: str | None, account_id: int | None) -> int:
    """An account given by id or handle (with or without @)."""
    from sqlalchemy import select

    from socialcare.db import session_scope
    from socialcare.posts.models import Account

    if account_id is not None:
        return account_id
    if account is None:
        raise typer.BadParameter("name the account: its id or handle", param_hint="ACCOUNT")
    if account.isdigit():
        return int(account)
    with session_scope() as session:
        found = session.execute(
            select(Account.id).where(Account.handle == account.lstrip("@"))
        ).scalars()
        ids = list(found)
    if len(ids) != 1:
        raise ConfigError(f"{len(ids)} accounts have the handle {account!r}; give the id")
    return ids[0]


def poll_command(account: str | None, account_id: int | None, once: bool) -> None:
    """Poll one account now, in this process, and score and route what it finds; without
    --once, again whenever the account is due, until interrupted."""
    from socialcare.db import session_scope, utcnow
    from socialcare.flows import InlineRunner, poll_account
    from socialcare.posts.models import Account

    target = resolve_account(account, account_id)
    while True:
        runner = InlineRunner()
        stored = poll_account(target, enqueue=runner)
        runner.drain()
        with session_scope() as session:
            row = session.get(Account, target)
            if row is None:
                raise ConfigError(f"no account {target}")
            error, due = row.last_error, row.next_poll_at
        typer.echo(f"stored {stored} new posts" + (f" (last error: {error})" if error else ""))
        if once:
            return
        time.sleep(max(1.0, (due - utcnow()).total_seconds()) if due else 60.0)
