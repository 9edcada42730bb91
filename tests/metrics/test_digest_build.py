"""A digest's figures from the database against plain Python over the same rows: generated
cases around a daylight-saving change and midnight, holidays, and imported TWCS threads."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from socialcare.cases.models import Case, Event
from socialcare.config import load_settings
from socialcare.db import session_scope
from socialcare.metrics.calendar import BusinessCalendar
from socialcare.metrics.digest import build_digest, period_bounds
from socialcare.posts.models import Post
from tests.factories import make_account, make_case, make_post, make_team
from tests.metrics.test_figures import assert_figures, expected

NY = ZoneInfo("America/New_York")
# New York left daylight saving time at 02:00 on Sunday 5 November 2017: that day has 25 hours.
DST_DAY_START = datetime(2017, 11, 5, tzinfo=NY).astimezone(UTC)
NOW = datetime(2017, 11, 6, 12, tzinfo=NY).astimezone(UTC)


@pytest.mark.parametrize(
    ("period", "tz", "now", "hours"),
    [
        ("day", "America/New_York", datetime(2017, 11, 6, 8, tzinfo=UTC), 25),
        ("day", "America/New_York", datetime(2017, 3, 13, 8, tzinfo=UTC), 23),
        ("day", "Pacific/Auckland", datetime(2017, 11, 6, 8, tzinfo=UTC), 24),
        ("week", "Europe/London", datetime(2017, 10, 31, 8, tzinfo=UTC), 7 * 24 + 1),
    ],
)
def test_periods_follow_the_local_calendar(period, tz, now, hours):
    start, end = period_bounds(period, now=now, tz=tz)
    assert (end - start) == timedelta(hours=hours)
    local = start.astimezone(ZoneInfo(tz))
    assert (local.hour, local.minute) == (0, 0)
    assert end <= now < end + (end - start) + timedelta(hours=2)


@pytest.fixture
def around_dst(session):
    """Forty cases over 4-6 November 2017 (New York), with agents' events and followers."""
    rng = random.Random(11)
    account = make_account(session)
    team = make_team(session, "care")
    for i in range(40):
        opened = DST_DAY_START + timedelta(minutes=rng.randint(-600, 25 * 60 + 600))
        root = make_post(
            session,
            account,
            created_at=opened,
            author_followers=rng.randint(0, 5000),
            metrics={"like_count": rng.randint(0, 50), "retweet_count": rng.randint(0, 5)},
        )
        reply = opened + timedelta(seconds=rng.randint(60, 9000)) if i % 4 else None
        case = make_case(
            session,
            account,
            root,
            priority=rng.choice(["P1", "P2", "P3"]),
            team=team,
            first_response_at=reply,
            claimed_at=opened + timedelta(seconds=rng.randint(30, 3000)),
        )
        session.add(
            Event(
                at=opened + timedelta(minutes=3),
                actor=f"agent:a{i % 3}",
                kind="claimed",
                case_id=case.id,
                data={},
            )
        )
    session.commit()
    return account.id


def test_a_25_hour_day_digest_equals_the_python_computation(settings, session, around_dst):
    cfg = load_settings(
        DATABASE_URL=settings.database_url,
        BUSINESS_HOURS="mon-fri 09:00-17:00",
        BUSINESS_TZ="America/New_York",
        BUSINESS_HOLIDAYS="US",
    )
    with session_scope(cfg) as s:
        digest = build_digest(session=s, settings=cfg, period="day", now=NOW, tz="America/New_York")
        cases = list(s.execute(select(Case)).scalars())
        posts = {p.id: p for p in s.execute(select(Post)).scalars()}
        events = list(s.execute(select(Event)).scalars())
    start, end = digest.start, digest.end
    assert end - start == timedelta(hours=25)
    inside = [c for c in cases if start <= c.opened_at < end]
    assert inside, "the generated cases cover the day"
    assert_figures(digest.total, expected(inside, now=NOW))
    before = [c for c in cases if start - timedelta(hours=24) <= c.opened_at < start]
    assert_figures(digest.previous, expected(before, now=NOW))
    sla = cfg.sla_seconds
    # Missed: answered late or still waiting past the SLA; their authors' followers add up.
    missed = [
        c
        for c in inside
        if (c.first_response_at or NOW) - c.opened_at > (c.sla_due_at - c.opened_at)
    ]
    assert sla and digest.exposure_followers == sum(
        posts[c.root_post_id].author_followers for c in missed
    )
    assert digest.exposure_engagement == sum(
        posts[c.root_post_id].metrics["like_count"]
        + 2 * posts[c.root_post_id].metrics["retweet_count"]
        for c in missed
    )
    assert digest.exposure_engagement > 0
    # Worst waits: longest first, unanswered ones counted to now.
    waits = sorted(
        (((c.first_response_at or NOW) - c.opened_at).total_seconds() for c in inside),
        reverse=True,
    )[:10]
    assert [w.waited_s for w in digest.worst_waits] == pytest.approx(waits)
    assert all(w.url and w.url.startswith("https://x.com/") for w in digest.worst_waits)
    # Volume by local hour: 01:00 happens twice on this day, both count for hour 1.
    local_hours = Counter(
        p.created_at.astimezone(NY).hour
        for p in posts.values()
        if not p.is_brand and start <= p.created_at < end
    )
    assert [v.posts for v in digest.volume_by_hour] == [local_hours.get(h, 0) for h in range(24)]
    agents = {
        h: len({e.actor for e in events if start <= e.at < end and e.at.astimezone(NY).hour == h})
        for h in range(24)
    }
    assert [v.agents for v in digest.volume_by_hour] == [agents[h] for h in range(24)]
    # Business hours: a Sunday, so everything is off hours.
    calendar = BusinessCalendar.from_settings(cfg)
    assert not any(calendar.is_open(c.opened_at) for c in inside)
    assert digest.business_hours is not None and digest.business_hours.cases == 0
    assert digest.off_hours is not None and digest.off_hours.cases == len(inside)
    # Trend: one point per local day that had cases, each equal to its own computation.
    for point in digest.trend:
        day_cases = [c for c in cases if c.opened_at.astimezone(NY).date() == point.day]
        want = expected(day_cases, now=NOW)
        assert point.cases == want["cases"]
        assert point.p50_s == pytest.approx(want["p50_s"], abs=0.01)
    assert sorted(digest.first_response_seconds) == pytest.approx(
        sorted(
            (c.first_response_at - c.opened_at).total_seconds()
            for c in inside
            if c.first_response_at is not None and c.first_response_at <= NOW
        )
    )


def test_business_hours_leave_out_public_holidays_and_nights(settings, session):
    account = make_account(session)
    # Thursday 23 November 2017 was Thanksgiving (US); Friday 24th a working day.
    moments = [
        datetime(2017, 11, 23, 10, tzinfo=NY),  # holiday
        datetime(2017, 11, 24, 10, tzinfo=NY),  # open
        datetime(2017, 11, 24, 16, 59, tzinfo=NY),  # open
        datetime(2017, 11, 24, 17, 0, tzinfo=NY),  # closed
        datetime(2017, 11, 24, 23, 30, tzinfo=NY),  # night
        datetime(2017, 11, 25, 11, tzinfo=NY),  # Saturday
    ]
    for m in moments:
        root = make_post(session, account, created_at=m.astimezone(UTC))
        make_case(
            session, account, root, first_response_at=m.astimezone(UTC) + timedelta(minutes=5)
        )
    session.commit()
    cfg = load_settings(
        DATABASE_URL=settings.database_url, BUSINESS_TZ="America/New_York", BUSINESS_HOLIDAYS="US"
    )
    calendar = BusinessCalendar.from_settings(cfg)
    assert [calendar.is_open(m) for m in moments] == [False, True, True, False, False, False]
    now = datetime(2017, 11, 28, 12, tzinfo=UTC)
    with session_scope(cfg) as s:
        digest = build_digest(
            session=s, settings=cfg, period="week", now=now, tz="America/New_York"
        )
    assert digest.total.cases == 6
    assert (digest.business_hours.cases, digest.off_hours.cases) == (2, 4)


def test_an_unknown_holiday_country_or_hours_format_names_the_setting():
    from socialcare.errors import ConfigError

    with pytest.raises(ConfigError, match="BUSINESS_HOLIDAYS"):
        BusinessCalendar.parse("mon-fri 09:00-17:00", "UTC", "XX")
    with pytest.raises(ConfigError, match="BUSINESS_HOURS"):
        BusinessCalendar.parse("weekdays 9-5", "UTC", "")
    with pytest.raises(ConfigError, match="BUSINESS_TZ"):
        BusinessCalendar.parse("mon-fri 09:00-17:00", "Mars/Olympus", "")


def test_a_long_distribution_is_sampled_evenly_by_rank(settings, session, around_dst, monkeypatch):
    from socialcare.metrics import digest as module

    monkeypatch.setattr(module, "DISTRIBUTION_MAX", 4)
    with session_scope(settings) as s:
        sampled = build_digest(
            session=s, settings=settings, period="day", now=NOW, tz="America/New_York"
        )
        cases = list(s.execute(select(Case)).scalars())
    times = sorted(
        (c.first_response_at - c.opened_at).total_seconds()
        for c in cases
        if sampled.start <= c.opened_at < sampled.end and c.first_response_at is not None
    )
    step = len(times) // 4 + 1
    assert len(times) > 4
    assert sampled.first_response_seconds == pytest.approx(times[::step])


def test_each_team_is_judged_by_its_own_calendar(settings, session):
    account = make_account(session)
    london = make_team(
        session, "london", calendar={"hours": "mon-sat 08:00-20:00", "tz": "Europe/London"}
    )
    usual = make_team(session, "usual")
    # Monday 27 November and Saturday 2 December 2017, in UTC; London is on UTC then.
    moments = [datetime(2017, 11, 27, h, tzinfo=UTC) for h in (7, 8, 13, 15, 19, 21, 23)]
    moments += [datetime(2017, 12, 2, 12, tzinfo=UTC)]
    for team in (london, usual, None):
        for m in moments:
            root = make_post(session, account, created_at=m)
            make_case(session, account, root, team=team, first_response_at=m + timedelta(minutes=3))
    session.commit()
    cfg = load_settings(
        DATABASE_URL=settings.database_url,
        BUSINESS_TZ="America/New_York",
        BUSINESS_HOURS="mon-fri 09:00-17:00",
    )
    own = BusinessCalendar.for_team("london", london.calendar, cfg)
    default = BusinessCalendar.from_settings(cfg)
    want = sum(own.is_open(m) for m in moments) + 2 * sum(default.is_open(m) for m in moments)
    assert 0 < want < 3 * len(moments)
    now = datetime(2017, 12, 5, tzinfo=UTC)
    with session_scope(cfg) as s:
        digest = build_digest(session=s, settings=cfg, period="week", now=now, tz="UTC")
    assert digest.total.cases == 3 * len(moments)
    assert digest.business_hours.cases == want
    assert digest.off_hours.cases == 3 * len(moments) - want


def test_a_team_calendar_is_set_and_checked_from_the_cli(settings, session, monkeypatch):
    from typer.testing import CliRunner

    from socialcare.cli import app
    from socialcare.people.models import Team

    make_team(session, "night")
    session.commit()
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    from socialcare import config

    config.get_settings.cache_clear()
    runner = CliRunner()
    ok = runner.invoke(
        app, ["teams", "calendar", "night", "--hours", "mon-sun 20:00-23:59", "--tz", "Asia/Tokyo"]
    )
    assert ok.exit_code == 0, ok.output
    assert "mon-sun 20:00-23:59 Asia/Tokyo" in ok.output
    bad = runner.invoke(app, ["teams", "calendar", "night", "--tz", "Nowhere/Land"])
    assert bad.exit_code != 0 and "BUSINESS_TZ" in bad.output
    with session_scope(settings) as s:
        team = s.execute(select(Team).where(Team.name == "night")).scalar_one()
        assert team.calendar == {"hours": "mon-sun 20:00-23:59", "tz": "Asia/Tokyo"}
    config.get_settings.cache_clear()
