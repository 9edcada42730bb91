"""Which digests are due: one delivery row per recipient and period, in each recipient's zone."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from socialcare.db import session_scope
from socialcare.metrics.models import DigestDelivery
from socialcare.metrics.outbound import retry_delay
from socialcare.metrics.recipients import Recipient
from socialcare.metrics.schedule import due_digests, periods_due

MONDAY_NOON = datetime(2025, 3, 10, 12, tzinfo=UTC)
LONDON = Recipient(kind="email", address="lead@example.com", tz="Europe/London")
NEW_YORK = Recipient(kind="slack", address="#care", tz="America/New_York")
AUCKLAND = Recipient(kind="email", address="nz@example.com", tz="Pacific/Auckland")


def with_recipients(settings, *recipients, periods=("day", "week")):
    return settings.model_copy(
        update={"digest_recipients": list(recipients), "digest_periods": periods}
    )


def deliveries(settings) -> list[DigestDelivery]:
    with session_scope(settings) as s:
        return list(
            s.execute(
                select(DigestDelivery).order_by(DigestDelivery.recipient, DigestDelivery.period)
            ).scalars()
        )


def test_each_recipient_gets_one_delivery_per_period_however_often_the_schedule_runs(
    engine, settings
):
    settings = with_recipients(settings, LONDON, NEW_YORK)
    created = []
    for minutes in range(0, 15, 5):
        with session_scope(settings) as s:
            created.append(
                due_digests(
                    session=s, settings=settings, now=MONDAY_NOON + timedelta(minutes=minutes)
                )
            )
    assert [len(c) for c in created] == [4, 0, 0]
    rows = deliveries(settings)
    assert sorted((r.recipient, r.period) for r in rows) == [
        ("email:lead@example.com", "day"),
        ("email:lead@example.com", "week"),
        ("slack:#care", "day"),
        ("slack:#care", "week"),
    ]
    assert {r.state for r in rows} == {"pending"} and {r.attempts for r in rows} == {0}
    assert sorted(r.id for r in rows) == sorted(created[0])


def test_concurrent_schedulers_create_each_delivery_once(engine, settings):
    settings = with_recipients(settings, LONDON, NEW_YORK, AUCKLAND)
    callers = 6
    barrier = threading.Barrier(callers)
    created: list[int] = []
    errors: list[BaseException] = []

    def schedule() -> None:
        try:
            barrier.wait(timeout=10)
            with session_scope(settings) as s:
                created.extend(due_digests(session=s, settings=settings, now=MONDAY_NOON))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=schedule) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    rows = deliveries(settings)
    # London and New York are on Monday: day and week; Auckland (Tuesday 01:00) only its day.
    assert len(rows) == 5
    assert sorted(created) == sorted(r.id for r in rows)


def test_auckland_and_new_york_recipients_get_their_own_local_days(engine, settings):
    settings = with_recipients(settings, AUCKLAND, NEW_YORK, periods=("day",))
    with session_scope(settings) as s:
        due_digests(session=s, settings=settings, now=MONDAY_NOON)
    nz, ny = deliveries(settings)
    # 12:00 UTC on 10 March is 01:00 on Tuesday 11 March in Auckland (NZDT, +13): its last
    # complete day is Monday 10 March; in New York (EDT, -4) it is 08:00 Monday: Sunday 9 March.
    assert (nz.period_start, nz.period_end) == (
        datetime(2025, 3, 9, 11, tzinfo=UTC),
        datetime(2025, 3, 10, 11, tzinfo=UTC),
    )
    assert (ny.period_start, ny.period_end) == (
        datetime(2025, 3, 9, 5, tzinfo=UTC),
        datetime(2025, 3, 10, 4, tzinfo=UTC),
    )
    assert (nz.tz, ny.tz) == ("Pacific/Auckland", "America/New_York")


@pytest.mark.parametrize(
    ("now", "period", "hours"),
    [
        (datetime(2025, 3, 10, 12, tzinfo=UTC), "day", 23),  # clocks went forward on 9 March
        (datetime(2025, 11, 3, 12, tzinfo=UTC), "day", 25),  # and back on 2 November
        (datetime(2025, 11, 3, 12, tzinfo=UTC), "week", 7 * 24 + 1),
        (datetime(2025, 11, 4, 12, tzinfo=UTC), "day", 24),
    ],
)
def test_a_daylight_saving_change_day_is_23_or_25_hours_long(engine, settings, now, period, hours):
    settings = with_recipients(settings, NEW_YORK, periods=(period,))
    with session_scope(settings) as s:
        due_digests(session=s, settings=settings, now=now)
    (row,) = deliveries(settings)
    assert row.period_end - row.period_start == timedelta(hours=hours)


def test_the_week_is_due_only_on_the_recipients_local_monday():
    sunday_evening_utc = datetime(2025, 3, 9, 20, tzinfo=UTC)  # Monday 09:00 in Auckland
    periods = ("day", "week")
    assert periods_due(AUCKLAND, periods=periods, now=sunday_evening_utc) == ["day", "week"]
    assert periods_due(NEW_YORK, periods=periods, now=sunday_evening_utc) == ["day"]
    assert periods_due(NEW_YORK, periods=("week",), now=MONDAY_NOON) == ["week"]
    assert periods_due(NEW_YORK, periods=("week",), now=sunday_evening_utc) == []


def test_digest_periods_week_schedules_weekly_digests_only(engine, settings):
    settings = with_recipients(settings, LONDON, periods=("week",))
    with session_scope(settings) as s:
        due_digests(session=s, settings=settings, now=MONDAY_NOON)
    assert [r.period for r in deliveries(settings)] == ["week"]


def test_no_recipients_means_no_deliveries(engine, settings):
    with session_scope(settings) as s:
        assert due_digests(session=s, settings=settings, now=MONDAY_NOON) == []
    assert deliveries(settings) == []


@pytest.mark.parametrize(
    ("attempts", "retry_after", "jitter", "seconds"),
    [
        (1, None, 0.0, 60),
        (2, None, 0.0, 120),
        (3, None, 1.0, 300),
        (10, None, 1.0, 3600),  # capped at an hour
        (1, 90.0, 1.0, 90),  # the far side's Retry-After wins over the backoff
        (1, 86400.0, 0.0, 3600),  # but never past the cap
    ],
)
def test_retries_back_off_exponentially_with_jitter_and_a_cap(
    attempts, retry_after, jitter, seconds
):
    assert retry_delay(attempts, retry_after=retry_after, jitter=lambda: jitter) == seconds


def test_a_bad_digest_periods_value_is_rejected_naming_the_variable(monkeypatch):
    from socialcare.config import load_settings
    from socialcare.errors import ConfigError

    monkeypatch.setenv("DIGEST_PERIODS", "day,month")
    with pytest.raises(ConfigError, match="DIGEST_PERIODS"):
        load_settings()
    monkeypatch.setenv("DIGEST_PERIODS", " Week ")
    assert load_settings().digest_periods == ("week",)
