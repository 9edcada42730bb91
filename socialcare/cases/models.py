"""Cases (a customer's thread that wants an answer), replies (the outbox) and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from socialcare.db import Base, utcnow

OPEN_STATUSES = ("new", "queued", "claimed", "responded")
CLOSED_STATUSES = ("resolved", "dismissed")
_OPEN_SQL = "status IN ('new', 'queued', 'claimed', 'responded')"


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_queue", "status", "team_id", "priority", "waiting_since"),
        Index("ix_cases_customer", "account_id", "customer_external_id", "status"),
        Index("ix_cases_opened_at", "opened_at"),  # the latency figures select by period
        # The queue: open cases in its order, and the values of its filter menus (migrations 0009,
        # 0013).
        *(
            Index(name, *columns, postgresql_where=text(_OPEN_SQL), sqlite_where=text(_OPEN_SQL))
            for name, columns in (
                ("ix_cases_open_queue", ("priority", "waiting_since", "id")),
                ("ix_cases_open_platform", ("platform",)),
                ("ix_cases_open_topic", ("topic",)),
            )
        ),
        # One open case per customer and brand account, whatever workers race to create.
        Index(
            "uq_cases_open_customer",
            "account_id",
            "customer_external_id",
            unique=True,
            postgresql_where=text(_OPEN_SQL),
            sqlite_where=text(_OPEN_SQL),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    platform: Mapped[str] = mapped_column(String(32))
    customer_external_id: Mapped[str] = mapped_column(String(64))
    customer_handle: Mapped[str] = mapped_column(String(64))
    root_post_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    priority: Mapped[str] = mapped_column(String(4), default="P4")
    urgency: Mapped[float] = mapped_column(Float, default=0.0)
    topic: Mapped[str | None] = mapped_column(String(32))
    opened_at: Mapped[datetime]  # the first customer post's public created_at
    detected_at: Mapped[datetime]  # when the source first saw it
    # When the customer's current wait began: the case's first post, or the first post they wrote
    # after the brand's reply; the queue's order within a priority. Set on every case (0013).
    waiting_since: Mapped[datetime | None]
    # While the customer waits again after a brand reply: the next-reply SLA's due time.
    reply_due_at: Mapped[datetime | None]
    queued_at: Mapped[datetime | None]
    sla_due_at: Mapped[datetime | None]
    claimed_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    claimed_at: Mapped[datetime | None]
    claim_expires_at: Mapped[datetime | None]
    first_response_at: Mapped[datetime | None]
    first_response_post_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite")
    )
    first_response_via: Mapped[str | None] = mapped_column(String(16))  # socialcare, platform
    closed_at: Mapped[datetime | None]
    close_reason: Mapped[str | None] = mapped_column(Text)
    escalated: Mapped[bool] = mapped_column(default=False)
    # An agent asked a lead to take over (escalate to a lead, with a reason in the events).
    needs_lead: Mapped[bool] = mapped_column(default=False, server_default="0")
    # The wait predicted when the case was queued (public acknowledgements), and when.
    ack_predicted_seconds: Mapped[float | None] = mapped_column(Float)
    ack_predicted_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# Reply states: queued -> sending -> sent | failed | unknown (outcome not known: reconcile first).
_ACK_SQL = "kind = 'ack'"


class Reply(Base):
    __tablename__ = "replies"
    __table_args__ = (
        Index("ix_replies_state_due", "state", "next_attempt_at"),
        # One public acknowledgement per case, whatever workers race to queue it.
        Index(
            "uq_replies_one_ack",
            "case_id",
            unique=True,
            postgresql_where=text(_ACK_SQL),
            sqlite_where=text(_ACK_SQL),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    in_reply_to_post_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    text: Mapped[str] = mapped_column(Text)
    # answer: an agent's reply; ack: the automatic "we're on it" notice, never a first response.
    kind: Mapped[str] = mapped_column(String(16), default="answer", server_default="answer")
    state: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]
    external_id: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Event(Base):
    """Append-only audit log of every action, by a person or a worker."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    case_id: Mapped[int | None] = mapped_column(index=True)
    post_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    reply_id: Mapped[int | None]
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
