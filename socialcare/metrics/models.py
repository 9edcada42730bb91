"""Scheduled digest deliveries: one row per recipient, period and period start."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from socialcare.db import Base, utcnow

DELIVERY_STATES = ("pending", "sending", "sent", "failed")


class DigestDelivery(Base):
    """One scheduled digest: pending -> sending -> sent | failed, retried in between.

    The unique key (recipient, period, period_start) is what makes a period's digest once-only:
    whoever schedules it, the row is inserted at most once, and a send claims it first.
    """

    __tablename__ = "digest_deliveries"
    __table_args__ = (
        UniqueConstraint(
            "recipient", "period", "period_start", name="uq_digest_deliveries_recipient_period"
        ),
        Index("ix_digest_deliveries_state_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(320))  # "kind:address", e.g. email:a@b.example
    tz: Mapped[str] = mapped_column(String(64))  # the IANA zone the period was cut in
    period: Mapped[str] = mapped_column(String(8))  # "day" | "week"
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # pending: when to try (the sweep's lease on a queued send); sending: when the claim expires.
    next_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    result_target: Mapped[str | None] = mapped_column(String(512))
    message_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
