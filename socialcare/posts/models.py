"""Accounts (monitored brand accounts), posts (customer and brand) and their scores."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from socialcare.db import Base, utcnow

# Pipeline stages of a post. Customer posts: ingested -> scored -> routed.
# Brand replies: ingested -> routed (matched to their case). Never work: ignored.
STAGE_INGESTED = "ingested"
STAGE_SCORED = "scored"
STAGE_ROUTED = "routed"
STAGE_IGNORED = "ignored"
STAGE_FAILED = "failed"


class Account(Base):
    """A monitored brand account on one platform, with its poll cursors and health."""

    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("platform", "handle", name="uq_accounts_platform_handle"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))  # which MentionSource serves it: x, replay
    handle: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str | None] = mapped_column(String(64))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    cursors: Mapped[dict[str, Any]] = mapped_column(default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    next_poll_at: Mapped[datetime | None]
    last_polled_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    failing: Mapped[bool] = mapped_column(Boolean, default=False)
    poll_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The adaptive poll interval: shorter while mentions flow, longer when quiet.
    poll_interval_seconds: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Post(Base):
    """Any ingested post, customer or brand; unique per platform and platform id."""

    __tablename__ = "posts"
    __table_args__ = (
        UniqueConstraint("platform", "external_id", name="uq_posts_platform_external_id"),
        Index("ix_posts_reply_to", "platform", "in_reply_to_external_id"),
        Index("ix_posts_stage_due", "stage", "next_step_at"),
        Index("ix_posts_author", "account_id", "author_external_id"),
        # The queue's language menu steps through it (socialcare.web.languages.language_menu).
        Index("ix_posts_language", "language"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    is_brand: Mapped[bool] = mapped_column(Boolean, default=False)
    is_retweet: Mapped[bool] = mapped_column(Boolean, default=False)
    author_external_id: Mapped[str] = mapped_column(String(64))
    author_handle: Mapped[str] = mapped_column(String(64))
    author_followers: Mapped[int | None] = mapped_column(Integer)
    author_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    text: Mapped[str] = mapped_column(Text)
    lang: Mapped[str | None] = mapped_column(String(16))  # as the platform gave it
    # Customer posts: the ISO 639-1 code detected at ingestion (socialcare.posts.language), or
    # "und" when it cannot be told; NULL for brand posts and for posts not detected yet.
    language: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime]  # when the post became public (platform time, UTC)
    observed_at: Mapped[datetime]  # when the source saw it (source clock; replay: virtual)
    ingested_at: Mapped[datetime] = mapped_column(default=utcnow)
    in_reply_to_external_id: Mapped[str | None] = mapped_column(String(64))
    conversation_external_id: Mapped[str | None] = mapped_column(String(64))
    quoted_external_id: Mapped[str | None] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Interactions per hour: since the post became public at first sight, then between the last
    # two observations whenever a later poll sees the post again with new counts.
    engagement_per_hour: Mapped[float | None] = mapped_column(Float)
    metrics_observed_at: Mapped[datetime | None]
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The UTC day the post was last read from the platform: a second read that day is not billed.
    read_on: Mapped[date | None] = mapped_column(Date)
    stage: Mapped[str] = mapped_column(String(16), default=STAGE_INGESTED)
    next_step_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)

    score: Mapped[Score | None] = relationship(back_populates="post", uselist=False)


class Score(Base):
    """Sentiment and urgency of one post, with the reasons behind the urgency."""

    __tablename__ = "scores"

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id"), unique=True)
    sentiment: Mapped[str] = mapped_column(String(16))
    probabilities: Mapped[dict[str, Any]] = mapped_column(default=dict)
    urgency: Mapped[float] = mapped_column(Float)
    priority: Mapped[str] = mapped_column(String(4))
    topic: Mapped[str] = mapped_column(String(32))
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    model: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    post: Mapped[Post] = relationship(back_populates="score")
