"""A digest's figures from the database: one brand (or all), one day or week, in a time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, desc, func, or_, select, true
from sqlalchemy import case as sql_case
from sqlalchemy.orm import Session

from socialcare.cases.models import Case, Event
from socialcare.config import Settings
from socialcare.db import SecondsBetween, at
from socialcare.metrics.acks import ack_accuracy
from socialcare.metrics.calendar import BusinessCalendar
from socialcare.metrics.digest_model import (
    Digest,
    Figures,
    GroupFigures,
    HourVolume,
    TrendPoint,
    WorstWait,
    empty_figures,
)
from socialcare.metrics.figures import (
    Scope,
    case_rows,
    figures_by,
    in_scope,
    missed_filter,
    total_figures,
)
from socialcare.metrics.localtime import LocalTime, parse_day, zone
from socialcare.metrics.post_figures import post_figures_by
from socialcare.metrics.recovery import sentiment_recovery
from socialcare.metrics.surge_figures import surge_figures
from socialcare.people.models import Team
from socialcare.posts.models import Account, Post
from socialcare.sources.urls import post_url

PERIODS = ("day", "week")


def period_bounds(period: str, *, now: datetime, tz: str) -> tuple[datetime, datetime]:
    """The last complete day (local midnight to midnight) or ISO week (Monday 00:00 to Monday
    00:00) in tz before now, as aware UTC datetimes [start, end). Daylight-saving days are 23 or
    25 hours long, as the local calendar has them."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}, got {period!r}")
    local = now.astimezone(zone(tz))
    end_day = local.date()
    if period == "week":
        end_day -= timedelta(days=end_day.weekday())
    start_day = end_day - timedelta(days=1 if period == "day" else 7)

    def midnight(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=zone(tz)).astimezone(UTC)

    return midnight(start_day), midnight(end_day)


TREND_DAYS = {"day": 14, "week": 28}
WORST = 10
DISTRIBUTION_MAX = 5000  # first-response times sent to the chart: an even sample beyond this


def _answered(scope: Scope) -> ColumnElement[bool]:
    return and_(Case.first_response_at.is_not(None), Case.first_response_at <= at(scope.now))


def _grouped(
    session: Session, scope: Scope, previous: Scope, sla: dict[str, int], dimension: str
) -> list[GroupFigures]:
    now = figures_by(session=session, scope=scope, sla_seconds=sla, dimension=dimension)
    before = figures_by(session=session, scope=previous, sla_seconds=sla, dimension=dimension)
    return [GroupFigures(name, now[name], before.get(name)) for name in sorted(now)]


def _worst_waits(session: Session, scope: Scope, server: str = "") -> list[WorstWait]:
    """The longest waits for a first response: answered ones to their answer, others to now;
    each post with its public page (server: the Mastodon server, for a status without a url)."""
    answered = _answered(scope)
    waited = sql_case(
        (answered, SecondsBetween(Case.first_response_at, Case.opened_at)),
        else_=SecondsBetween(at(scope.now), Case.opened_at),
    ).label("waited")
    stmt = select(
        Case.customer_handle,
        Case.platform,
        Post.external_id,
        Post.raw["url"].as_string().label("given_url"),
        Post.raw["uri"].as_string().label("given_uri"),
        Post.author_followers,
        sql_case((answered, 1), else_=0).label("answered"),
        waited,
    ).join_from(Case, Post, Post.id == Case.root_post_id)
    stmt = in_scope(stmt, scope).order_by(desc("waited"), Case.id).limit(WORST)
    return [
        WorstWait(
            handle=row.customer_handle,
            url=post_url(
                row.platform,
                row.external_id,
                handle=row.customer_handle,
                raw={"url": row.given_url, "uri": row.given_uri},
                server=server,
            ),
            waited_s=max(0.0, float(row.waited or 0.0)),
            answered=bool(row.answered),
            followers=int(row.author_followers or 0),
        )
        for row in session.execute(stmt)
    ]


def _engagement() -> ColumnElement[Any]:
    """A post's interactions from its stored metrics, weighted as the urgency counts them."""

    def count(key: str) -> ColumnElement[Any]:
        return func.coalesce(Post.metrics[key].as_integer(), 0)

    return (
        count("like_count")
        + 2 * count("retweet_count")
        + count("reply_count")
        + count("quote_count")
    )


def _exposure(session: Session, scope: Scope, sla: dict[str, int]) -> tuple[int, int]:
    """(followers, interactions) on the posts of the cases that missed their SLA (answered late
    or still waiting), each case's posts counted once."""
    posts = (
        select(Post.author_followers, _engagement().label("engagement"))
        .select_from(Case)
        .join(Post, and_(Post.case_id == Case.id, Post.is_brand.is_(False)))
    )
    missed = in_scope(posts, scope).where(missed_filter(scope, sla)).subquery()
    followers = (
        select(func.coalesce(func.sum(Post.author_followers), 0))
        .select_from(Case)
        .join(Post, Post.id == Case.root_post_id)
    )
    followers = in_scope(followers, scope).where(missed_filter(scope, sla))
    engagement = select(func.coalesce(func.sum(missed.c.engagement), 0))
    # coalesce(..., 0) is never NULL; its type is the summed column's, which may be.
    return int(session.execute(followers).scalar_one() or 0), int(
        session.execute(engagement).scalar_one()
    )


def _distribution(session: Session, scope: Scope, sla: dict[str, int]) -> list[float]:
    """First-response times of the answered cases; an even sample by rank when there are many."""
    rows = case_rows(scope, sla).subquery()
    ranked = (
        select(
            rows.c.frt,
            func.row_number().over(order_by=rows.c.frt).label("rn"),
            func.count().over().label("n"),
        )
        .where(rows.c.frt.is_not(None))
        .subquery()
    )
    # Every step-th by rank: n // DISTRIBUTION_MAX + 1 keeps at most DISTRIBUTION_MAX values.
    step = ranked.c.n // DISTRIBUTION_MAX + 1
    stmt = select(ranked.c.frt).where((ranked.c.rn - 1) % step == 0).order_by(ranked.c.rn)
    return [max(0.0, float(v)) for v in session.execute(stmt).scalars()]


def _trend(
    session: Session, scope: Scope, sla: dict[str, int], tz: str, days: int
) -> list[TrendPoint]:
    """One point per local day over the last days days up to the period's end."""
    span = Scope(scope.end - timedelta(days=days), scope.end, scope.now, scope.account_id)
    dialect = session.get_bind().dialect.name
    local = LocalTime(Case.opened_at, tz=tz, start=span.start, end=span.end, dialect=dialect)
    found = figures_by(session=session, scope=span, sla_seconds=sla, group=local.day())
    return [
        TrendPoint(parse_day(day), f.p50_s, f.p90_s, f.sla_attainment, f.cases)
        for day, f in sorted(found.items())
    ]


def _volume(session: Session, scope: Scope, tz: str) -> list[HourVolume]:
    """Customer posts and agents at work (anyone who acted on a case) per local hour."""
    dialect = session.get_bind().dialect.name
    posted = LocalTime(Post.created_at, tz=tz, start=scope.start, end=scope.end, dialect=dialect)
    posts = select(posted.hour().label("h"), func.count().label("n")).where(
        Post.is_brand.is_(False),
        Post.created_at >= at(scope.start),
        Post.created_at < at(scope.end),
        Post.created_at <= at(scope.now),
    )
    if scope.account_id is not None:
        posts = posts.where(Post.account_id == scope.account_id)
    acted = LocalTime(Event.at, tz=tz, start=scope.start, end=scope.end, dialect=dialect)
    agents = select(acted.hour().label("h"), func.count(Event.actor.distinct()).label("n")).where(
        Event.actor.like("agent:%"), Event.at >= at(scope.start), Event.at < at(scope.end)
    )
    counts = {int(h): int(n) for h, n in session.execute(posts.group_by("h"))}
    people = {int(h): int(n) for h, n in session.execute(agents.group_by("h"))}
    return [HourVolume(h, counts.get(h, 0), people.get(h, 0)) for h in range(24)]


def _in_business_hours(session: Session, scope: Scope, settings: Settings) -> ColumnElement[bool]:
    """SQL: the case was opened within its team's business hours (each team's own calendar, or
    the BUSINESS_* settings for teams without one and cases without a team)."""
    dialect = session.get_bind().dialect.name

    def inside(calendar: BusinessCalendar) -> ColumnElement[bool]:
        local = LocalTime(
            Case.opened_at, tz=calendar.tz, start=scope.start, end=scope.end, dialect=dialect
        )
        return calendar.contains(local, scope.start, scope.end)

    own: dict[BusinessCalendar, list[int]] = {}
    for team_id, name, calendar in session.execute(select(Team.id, Team.name, Team.calendar)):
        if calendar:
            own.setdefault(BusinessCalendar.for_team(name, calendar, settings), []).append(team_id)
    with_own = [team_id for ids in own.values() for team_id in ids]
    clauses = [and_(Case.team_id.in_(ids), inside(cal)) for cal, ids in own.items()]
    usual = or_(Case.team_id.is_(None), Case.team_id.not_in(with_own)) if with_own else true()
    clauses.append(and_(usual, inside(BusinessCalendar.from_settings(settings))))
    return or_(*clauses)


def _hours_split(
    session: Session, scope: Scope, sla: dict[str, int], settings: Settings
) -> tuple[Figures | None, Figures | None]:
    """Figures of the cases opened in business hours and of those opened outside them."""
    group = sql_case((_in_business_hours(session, scope, settings), "business"), else_="off")
    found = figures_by(session=session, scope=scope, sla_seconds=sla, group=group)
    return found.get("business", empty_figures()), found.get("off", empty_figures())


def build_digest(
    *,
    session: Session,
    settings: Settings,
    period: str,
    now: datetime,
    tz: str = "UTC",
    account_id: int | None = None,
    report_url: str | None = None,
) -> Digest:
    """The digest of the last complete period before now in tz, for one brand account (or all)."""
    start, end = period_bounds(period, now=now, tz=tz)
    sla = dict(settings.sla_seconds)
    scope = Scope(start, end, now, account_id)
    # The period before, by the local calendar (a daylight-saving day is 23 or 25 hours).
    previous = Scope(*period_bounds(period, now=start, tz=tz), now, account_id)
    brand = "all brands"
    if account_id is not None:
        account = session.get(Account, account_id)
        brand = account.handle if account is not None else f"account {account_id}"
    business, off = _hours_split(session, scope, sla, settings)
    followers, engagement = _exposure(session, scope, sla)
    return Digest(
        brand=brand,
        period=period,
        start=start,
        end=end,
        tz=tz,
        total=total_figures(session=session, scope=scope, sla_seconds=sla),
        previous=total_figures(session=session, scope=previous, sla_seconds=sla),
        by_team=_grouped(session, scope, previous, sla, "team"),
        by_priority=_grouped(session, scope, previous, sla, "priority"),
        business_hours=business,
        off_hours=off,
        exposure_followers=followers,
        exposure_engagement=engagement,
        worst_waits=_worst_waits(session, scope, settings.mastodon_api_base_url),
        first_response_seconds=_distribution(session, scope, sla),
        trend=_trend(session, scope, sla, tz, TREND_DAYS[period]),
        volume_by_hour=_volume(session, scope, tz),
        report_url=report_url,
        recovery_by_team=sentiment_recovery(session=session, scope=scope, by="team"),
        recovery_by_agent=sentiment_recovery(session=session, scope=scope, by="agent"),
        acknowledgements=ack_accuracy(session=session, scope=scope),
        next_reply=_next_reply(session, scope, settings),
        next_reply_previous=_next_reply(session, previous, settings),
        by_language=_by_language(session, scope, previous, sla),
        surges=surge_figures(session=session, scope=scope, sla_seconds=sla),
    )


def _by_language(
    session: Session, scope: Scope, previous: Scope, sla: dict[str, int]
) -> list[GroupFigures]:
    """First response per case by its first post's language, most cases first: every language
    seen, however few its cases."""
    groups = _grouped(session, scope, previous, sla, "language")
    return sorted(groups, key=lambda g: (-g.current.cases, g.name))


def _next_reply(session: Session, scope: Scope, settings: Settings) -> Figures:
    """Next reply per customer post over the period, against the next-reply SLA."""
    found = post_figures_by(
        session=session, scope=scope, next_reply_sla_seconds=dict(settings.next_reply_sla_seconds)
    )
    return found.get("all", empty_figures())
