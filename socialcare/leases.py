"""Leases and shared schedule state in the database: how redundant beats act as exactly one."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Integer, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from socialcare.db import Base, changed_rows, insert_for


class Lease(Base):
    """A named lease: one holder at a time until expires_at."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime]


class ScheduleRun(Base):
    """The last run of one periodic task, shared by every beat process."""

    __tablename__ = "schedule_runs"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_run_at: Mapped[datetime]
    total_run_count: Mapped[int] = mapped_column(Integer, default=0)


def hold_lease(*, session: Session, name: str, holder: str, seconds: float, now: datetime) -> bool:
    """Take or renew the lease for holder; False while someone else holds it."""
    session.execute(
        insert_for(session)(Lease)
        .values(name=name, holder=holder, expires_at=now - timedelta(seconds=1))
        .on_conflict_do_nothing(index_elements=["name"])
    )
    won = changed_rows(
        session.execute(
            update(Lease)
            .where(Lease.name == name, (Lease.holder == holder) | (Lease.expires_at < now))
            .values(holder=holder, expires_at=now + timedelta(seconds=seconds))
            .execution_options(synchronize_session=False)
        )
    )
    return won == 1


def release_lease(*, session: Session, name: str, holder: str, now: datetime) -> None:
    """Give the lease up at once (a clean shutdown), so a standby takes over now."""
    session.execute(
        update(Lease)
        .where(Lease.name == name, Lease.holder == holder)
        .values(expires_at=now - timedelta(seconds=1))
        .execution_options(synchronize_session=False)
    )


def schedule_state(*, session: Session) -> dict[str, tuple[datetime, int]]:
    rows = session.execute(
        select(ScheduleRun.name, ScheduleRun.last_run_at, ScheduleRun.total_run_count)
    )
    return {name: (at, count) for name, at, count in rows}


def claim_run(
    *, session: Session, name: str, expected_count: int, first_run_at: datetime, now: datetime
) -> bool:
    """Record one run of a periodic task if nobody recorded it first (compare-and-set)."""
    session.execute(
        insert_for(session)(ScheduleRun)
        .values(name=name, last_run_at=first_run_at, total_run_count=0)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    return (
        changed_rows(
            session.execute(
                update(ScheduleRun)
                .where(ScheduleRun.name == name, ScheduleRun.total_run_count == expected_count)
                .values(last_run_at=now, total_run_count=expected_count + 1)
                .execution_options(synchronize_session=False)
            )
        )
        == 1
    )
