"""Ingestion health per polled account, as `socialcare sources status` and the /sources page
show it, and the accounts' recent incidents."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from socialcare.config import Settings
from socialcare.ingest import service
from socialcare.ingest.models import IngestionIncident, ReadUsage
from socialcare.posts.models import Account, Post

COLUMNS = (
    "id",
    "platform",
    "handle",
    "state",
    "posts",
    "last_hour",
    "last_poll",
    "lag_s",
    "requests_left",
    "reset",
    "reads_today",
    "reads_month",
    "projected_cost",
    "incidents",
    "last_error",
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _usage(session: Session, since: Any) -> dict[int, int]:
    rows = session.execute(
        select(ReadUsage.account_id, func.sum(ReadUsage.billed))
        .where(ReadUsage.day >= since)
        .group_by(ReadUsage.account_id)
    )
    return {account_id: int(total or 0) for account_id, total in rows}


def ingestion_status(
    *, session: Session, now: datetime, settings: Settings
) -> list[dict[str, Any]]:
    """One row per polled account: what it ingested, how fresh it is, its budget and cost."""
    hour_ago = now - timedelta(hours=1)
    posts = {
        row.account_id: row
        for row in session.execute(
            select(
                Post.account_id,
                func.count().label("total"),
                func.count().filter(Post.ingested_at >= hour_ago).label("last_hour"),
                func.max(Post.created_at).label("newest"),
            ).group_by(Post.account_id)
        )
    }
    today = _usage(session, now.date())
    month = _usage(session, service.month_start(now.date()))
    open_by_account: dict[int, list[str]] = {}
    for incident in service.open_incidents(session=session):
        open_by_account.setdefault(incident.account_id, []).append(incident.kind)
    rows = []
    accounts = session.execute(select(Account).order_by(Account.id)).scalars()
    for account in accounts:
        if not (account.config or {}).get("polled"):
            continue
        counts = posts.get(account.id)
        newest = counts.newest if counts is not None else None
        windows = service.rate_windows(session=session, account_id=account.id)
        live = [w for w in windows.values() if w.reset_at > now]
        tightest = min(live, key=lambda w: w.remaining) if live else None
        interval = account.poll_interval_seconds or settings.poll_interval_seconds
        last = account.last_polled_at or account.created_at
        late = now - last > timedelta(seconds=2 * interval + settings.step_grace_seconds)
        kinds = list(dict.fromkeys(open_by_account.get(account.id, [])))
        if late and "missed_polls" not in kinds:
            kinds.append("missed_polls")
        state = "failing" if account.failing else ("late" if late else "ok")
        if not account.active:
            state = "inactive"
        elif "read_cap_reached" in kinds:
            state = "paused"
        billed_month = month.get(account.id, 0)
        rows.append(
            {
                "id": account.id,
                "platform": account.platform,
                "handle": account.handle,
                "state": state,
                "posts": counts.total if counts is not None else 0,
                "last_hour": counts.last_hour if counts is not None else 0,
                "last_poll": _iso(account.last_polled_at),
                "lag_s": round((now - newest).total_seconds()) if newest else None,
                "requests_left": tightest.remaining if tightest else None,
                "reset": _iso(tightest.reset_at) if tightest else None,
                "reads_today": today.get(account.id, 0),
                "reads_month": billed_month,
                "projected_cost": round(
                    service.projected_month(billed_month, now) * settings.x_cost_per_read, 2
                )
                if account.platform == "x"
                else None,
                "incidents": kinds,
                "last_error": account.last_error,
            }
        )
    return rows


def recent_incidents(
    *, session: Session, now: datetime, days: float = 7.0, limit: int = 200
) -> list[dict[str, Any]]:
    """Ingestion incidents still open, then those opened in the last days (window overflows and
    how they were filled, gaps search could not reach, failing credentials, read caps, missed
    polls), newest first, at most limit."""
    since = now - timedelta(days=days)
    query = (
        select(IngestionIncident, Account.platform, Account.handle)
        .join(Account, Account.id == IngestionIncident.account_id)
        .where(IngestionIncident.resolved_at.is_(None) | (IngestionIncident.opened_at >= since))
        .order_by(IngestionIncident.resolved_at.is_not(None), IngestionIncident.id.desc())
        .limit(limit)
    )
    return [
        {
            "id": incident.id,
            "account_id": incident.account_id,
            "platform": platform,
            "handle": handle,
            "kind": incident.kind,
            "severity": incident.severity,
            "detail": incident.detail,
            "opened_at": _iso(incident.opened_at),
            "resolved_at": _iso(incident.resolved_at),
        }
        for incident, platform, handle in session.execute(query)
    ]


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as aligned text columns (empty values as '-')."""

    def cell(row: dict[str, Any], name: str) -> str:
        value = row[name]
        if isinstance(value, list):
            value = ",".join(value)
        if name == "last_error" and value:
            value = str(value)[:60]
        return "-" if value in (None, "") else str(value)

    table = [list(COLUMNS)] + [[cell(r, c) for c in COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in table
    )
