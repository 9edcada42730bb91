"""Surge tables: per-account detector state and live clusters, surge incidents, their posts,
cases, timeline and alert deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from socialcare.db import Base, utcnow

SURGE_STATUSES = ("open", "acknowledged", "answered", "resolved")
ALERT_STATES = ("pending", "sending", "sent", "failed")
_POST_ID = BigInteger().with_variant(Integer, "sqlite")


class SurgeAccount(Base):
    """One row per account: the row every worker locks before touching the account's clusters,
    and the rate baseline learned from the account's own history."""

    __tablename__ = "surge_accounts"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    # baseline.Baseline.to_json(): hour-of-week EWMA rates, observations, the hour being counted.
    baseline: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SurgeCluster(Base):
    """A live cluster of posts that say the same thing (bounded per account, expires)."""

    __tablename__ = "surge_clusters"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    centroid: Mapped[bytes] = mapped_column(LargeBinary)  # float32 running mean of unit vectors
    size: Mapped[int] = mapped_column(Integer, default=0)
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]
    # Recent joins [[epoch seconds, post id, author], ...] within the rate window.
    recent: Mapped[list[Any]] = mapped_column(default=list)
    keywords: Mapped[dict[str, Any]] = mapped_column(default=dict)  # word -> count (capped)
    topics: Mapped[dict[str, Any]] = mapped_column(default=dict)  # topic -> count
    surge_id: Mapped[int | None] = mapped_column(ForeignKey("surges.id"))
    generation: Mapped[int] = mapped_column(Integer, default=0)  # surges this cluster opened


class Surge(Base):
    """A surge incident: open -> acknowledged -> answered -> resolved."""

    __tablename__ = "surges"
    __table_args__ = (Index("ix_surges_account_status", "account_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # "account:cluster:generation": opening is insert-or-ignore on it, once per surge.
    key: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    status: Mapped[str] = mapped_column(String(16), default="open")
    title: Mapped[str] = mapped_column(String(200))
    topic: Mapped[str] = mapped_column(String(32))
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    started_at: Mapped[datetime]  # the first post of the burst (public time)
    detected_at: Mapped[datetime]
    last_post_at: Mapped[datetime]
    post_count: Mapped[int] = mapped_column(Integer, default=0)
    rate_per_hour: Mapped[float] = mapped_column(Float, default=0.0)
    expected_per_hour: Mapped[float] = mapped_column(Float, default=0.0)
    p_value: Mapped[float] = mapped_column(Float, default=1.0)
    acknowledged_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SurgePost(Base):
    """A post that belongs to a surge."""

    __tablename__ = "surge_posts"

    surge_id: Mapped[int] = mapped_column(ForeignKey("surges.id"), primary_key=True)
    post_id: Mapped[int] = mapped_column(_POST_ID, ForeignKey("posts.id"), primary_key=True)
    created_at: Mapped[datetime]  # the post's public time
    similarity: Mapped[float] = mapped_column(Float, default=0.0)


class SurgeCase(Base):
    """A case whose posts belong to a surge."""

    __tablename__ = "surge_cases"

    surge_id: Mapped[int] = mapped_column(ForeignKey("surges.id"), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True, index=True)
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)


class SurgeEvent(Base):
    """The surge's timeline: opened, acknowledged, answered, resolved, alerted..."""

    __tablename__ = "surge_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    surge_id: Mapped[int] = mapped_column(ForeignKey("surges.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class SurgeAlert(Base):
    """One alert of one surge to one lead: pending -> sending -> sent | failed, once per key."""

    __tablename__ = "surge_alerts"
    __table_args__ = (
        UniqueConstraint("surge_id", "recipient", name="uq_surge_alerts_surge_recipient"),
        Index("ix_surge_alerts_state_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    surge_id: Mapped[int] = mapped_column(ForeignKey("surges.id"))
    recipient: Mapped[str] = mapped_column(String(320))  # "kind:address"
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    result_target: Mapped[str | None] = mapped_column(String(512))
    message_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
