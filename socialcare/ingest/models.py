"""Ingestion health: rate-limit snapshots, billed reads per day, and ingestion incidents."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from socialcare.db import Base, utcnow


class RateLimitState(Base):
    """The last x-rate-limit-* headers seen for one account and endpoint (what status shows and
    what a process without Redis starts from)."""

    __tablename__ = "rate_limits"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(64), primary_key=True)
    limit: Mapped[int] = mapped_column(Integer)
    remaining: Mapped[int] = mapped_column(Integer)
    reset_at: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReadUsage(Base):
    """Requests made and posts read for one account on one UTC day; billed counts a post once a
    day however often it was read (as the platform bills it)."""

    __tablename__ = "read_usage"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    reads: Mapped[int] = mapped_column(Integer, default=0)
    billed: Mapped[int] = mapped_column(Integer, default=0)


class IngestionIncident(Base):
    """Something operators must see about an account's ingestion: a window overflow (and how it
    was filled), a gap search cannot reach, failing credentials, a read cap, missed polls."""

    __tablename__ = "ingestion_incidents"
    __table_args__ = (Index("ix_incidents_account_open", "account_id", "kind", "resolved_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))  # info, warning, error
    detail: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
