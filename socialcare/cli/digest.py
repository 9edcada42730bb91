"""`socialcare digest`: deliver a digest now; `socialcare digest status`: scheduled ones."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import typer

from socialcare.config import Settings, get_settings
from socialcare.db import session_scope, utcnow
from socialcare.display import one_line
from socialcare.errors import ConfigError, DeliveryError

if TYPE_CHECKING:  # imported where used: the command line starts without them
    from socialcare.metrics.delivery import Notifier
    from socialcare.metrics.models import DigestDelivery

digest_app = typer.Typer(
    help="Latency digests: `socialcare digest --period day --to email` sends one now;"
    " `socialcare digest status` lists the scheduled deliveries.",
)
CHANNELS = ("email", "slack", "stdout")


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _account_id(handle: str | None) -> int | None:
    if handle is None:
        return None
    from sqlalchemy import select

    from socialcare.posts.models import Account

    with session_scope() as session:
        ids = session.scalars(
            select(Account.id).where(Account.handle == handle.lstrip("@")).order_by(Account.id)
        ).all()
    if not ids:
        raise _fail(
            f"no account with the handle {one_line(handle)!r} (see `socialcare accounts list`)"
        )
    return ids[0]


def _targets(to: str, settings: Settings, tz: str | None) -> list[tuple[Notifier, str]]:
    """(notifier, time zone) for each configured destination of the channel."""
    from socialcare.metrics.delivery import StdoutNotifier, notifier_for
    from socialcare.metrics.recipients import Recipient

    if to == "stdout":
        return [(StdoutNotifier(), tz or "UTC")]
    if to == "email" and not settings.smtp_url:
        raise ConfigError("SMTP_URL is not set: no mail server to send the digest through")
    if to == "slack" and not settings.slack_webhook_url:
        raise ConfigError("SLACK_WEBHOOK_URL is not set: no Slack webhook to post the digest to")
    recipients = [r for r in settings.digest_recipients if r.kind == to]
    if to == "email" and not recipients:
        raise ConfigError("DIGEST_RECIPIENTS has no email: recipient to send the digest to")
    if to == "slack":
        # One incoming webhook is one channel: post once, whatever the recipients say.
        recipients = recipients[:1] or [Recipient(kind="slack", address="webhook")]
    return [(notifier_for(r, settings=settings), tz or r.tz) for r in recipients]


@digest_app.callback(invoke_without_command=True)
def digest(
    ctx: typer.Context,
    period: str = typer.Option("day", help="day or week: the last complete one"),
    to: str | None = typer.Option(None, help="email, slack or stdout"),
    tz: str | None = typer.Option(
        None, help="IANA time zone (default: each recipient's own, UTC for stdout)"
    ),
    account: str | None = typer.Option(None, help="one brand account's handle (default: all)"),
) -> None:
    """Build the last complete period's digest and deliver it now to the channel's recipients."""
    if ctx.invoked_subcommand is not None:
        return
    from socialcare.flows.digests import report_url
    from socialcare.metrics.digest import PERIODS, build_digest
    from socialcare.metrics.localtime import zone

    if to not in CHANNELS:
        raise typer.BadParameter("email, slack or stdout", param_hint="--to")
    if period not in PERIODS:
        raise typer.BadParameter("day or week", param_hint="--period")
    if tz is not None:
        try:
            zone(tz)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--tz") from None
    settings = get_settings()
    try:
        targets = _targets(to, settings, tz)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    account_id = _account_id(account)
    now = utcnow()
    failed = 0
    for notifier, zone_name in targets:
        with session_scope(settings) as session:
            built = build_digest(
                session=session,
                settings=settings,
                period=period,
                now=now,
                tz=zone_name,
                account_id=account_id,
                report_url=report_url(settings),
            )
        try:
            result = notifier.send(built)
        except DeliveryError as exc:
            kind = "permanent" if exc.permanent else "transient, try again later"
            typer.echo(f"error: delivery failed ({kind}): {one_line(exc)}", err=True)
            failed += 1
            continue
        if to != "stdout":
            typer.echo(f"sent the {period} digest to {result.target}")
    if failed:
        raise typer.Exit(1)


def _row(delivery: DigestDelivery) -> dict[str, Any]:
    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment is not None else None

    local_start = delivery.period_start.astimezone(ZoneInfo(delivery.tz))
    return {
        "id": delivery.id,
        "recipient": delivery.recipient,
        "tz": delivery.tz,
        "period": delivery.period,
        "local_start": local_start.date().isoformat(),
        "period_start": iso(delivery.period_start),
        "period_end": iso(delivery.period_end),
        "state": delivery.state,
        "attempts": delivery.attempts,
        "next_attempt_at": iso(delivery.next_attempt_at),
        "sent_at": iso(delivery.sent_at),
        "last_error": delivery.last_error,
    }


@digest_app.command("status")
def status(
    limit: int = typer.Option(20, min=1, help="how many, latest periods first"),
    fmt: str = typer.Option("table", "--format", help="table or json"),
) -> None:
    """Recent scheduled deliveries with their state, attempts and last error."""
    from socialcare.metrics.schedule import recent_deliveries

    if fmt not in ("table", "json"):
        raise typer.BadParameter("table or json", param_hint="--format")
    with session_scope() as session:
        rows = [_row(d) for d in recent_deliveries(session=session, limit=limit)]
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no scheduled digest deliveries yet (see DIGEST_RECIPIENTS)")
    for r in rows:
        typer.echo(
            f"#{r['id']:<5} {r['period']:<4} {r['local_start']} {one_line(r['recipient'])[:40]:<40}"
            f" {r['state']:<7} {r['attempts']} {one_line(r['last_error'] or '')}"
        )
