"""Small row factories for tests: accounts, posts, cases, scores, teams and agents."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from socialcare.cases.models import Case, Event, Reply
from socialcare.people.models import Agent, Team
from socialcare.posts.models import STAGE_ROUTED, Account, Post, Score

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SLA_SECONDS = {"P1": 900, "P2": 3600, "P3": 14400, "P4": 86400}

_ids = itertools.count(1)


def _next_id() -> int:
    return next(_ids)


def make_account(
    session: Session, handle: str = "acmecare", platform: str = "x", **fields: Any
) -> Account:
    """A monitored brand account (flushed)."""
    fields.setdefault("source", "replay")
    account = Account(platform=platform, handle=handle, **fields)
    session.add(account)
    session.flush()
    return account


def make_post(
    session: Session,
    account: Account,
    text: str = "my order never arrived",
    *,
    created_at: datetime | None = None,
    is_brand: bool = False,
    author_handle: str | None = None,
    author_external_id: str | None = None,
    in_reply_to: Post | str | None = None,
    case: Case | None = None,
    **fields: Any,
) -> Post:
    """A customer post (or a brand one with is_brand=True) on account's platform (flushed)."""
    n = _next_id()
    created = created_at or T0
    if author_handle is None:
        author_handle = account.handle if is_brand else f"customer{n}"
    reply_to = in_reply_to.external_id if isinstance(in_reply_to, Post) else in_reply_to
    fields.setdefault("observed_at", created + timedelta(seconds=5))
    fields.setdefault("stage", STAGE_ROUTED)
    fields.setdefault("author_followers", 100)
    post = Post(
        platform=account.platform,
        external_id=fields.pop("external_id", f"p{n}"),
        account_id=account.id,
        is_brand=is_brand,
        author_external_id=author_external_id or f"u-{author_handle}",
        author_handle=author_handle,
        text=text,
        created_at=created,
        in_reply_to_external_id=reply_to,
        case_id=case.id if case is not None else None,
        **fields,
    )
    session.add(post)
    session.flush()
    return post


def make_case(
    session: Session,
    account: Account,
    root_post: Post,
    *,
    priority: str = "P3",
    status: str = "queued",
    opened_at: datetime | None = None,
    first_response_at: datetime | None = None,
    team: Team | None = None,
    **fields: Any,
) -> Case:
    """A case rooted at root_post (which is attached to it); SLA due from priority (flushed)."""
    opened = opened_at or root_post.created_at
    fields.setdefault("sla_due_at", opened + timedelta(seconds=SLA_SECONDS[priority]))
    fields.setdefault("detected_at", opened + timedelta(seconds=5))
    fields.setdefault("queued_at", opened + timedelta(seconds=10))
    fields.setdefault("waiting_since", opened)
    case = Case(
        account_id=account.id,
        platform=account.platform,
        customer_external_id=root_post.author_external_id,
        customer_handle=root_post.author_handle,
        root_post_id=root_post.id,
        status=status,
        priority=priority,
        opened_at=opened,
        first_response_at=first_response_at,
        team_id=team.id if team is not None else None,
        **fields,
    )
    session.add(case)
    session.flush()
    root_post.case_id = case.id
    session.flush()
    return case


def make_score(session: Session, post: Post, **fields: Any) -> Score:
    """A score for post with one default reason (flushed)."""
    fields.setdefault("sentiment", "negative")
    fields.setdefault("urgency", 0.5)
    fields.setdefault("priority", "P3")
    fields.setdefault("topic", "delivery")
    fields.setdefault("model", "test")
    fields.setdefault("reasons", [{"signal": "negative_sentiment", "value": 0.9, "weight": 0.4}])
    score = Score(post_id=post.id, **fields)
    session.add(score)
    session.flush()
    return score


def make_team(session: Session, name: str = "support", **fields: Any) -> Team:
    """A team (flushed)."""
    team = Team(name=name, **fields)
    session.add(team)
    session.flush()
    return team


def make_agent(session: Session, handle: str = "alice", **fields: Any) -> Agent:
    """An agent (flushed)."""
    fields.setdefault("display_name", handle.title())
    agent = Agent(handle=handle, **fields)
    session.add(agent)
    session.flush()
    return agent


def make_reply(session: Session, case: Case, text: str = "Sorry! DM us.", **fields: Any) -> Reply:
    """An outbox reply to the case's root post (flushed)."""
    reply = Reply(case_id=case.id, in_reply_to_post_id=case.root_post_id, text=text, **fields)
    session.add(reply)
    session.flush()
    return reply


def make_event(session: Session, case: Case, kind: str = "case.opened", **fields: Any) -> Event:
    """An audit event about the case (flushed)."""
    fields.setdefault("actor", "router")
    event = Event(case_id=case.id, kind=kind, **fields)
    session.add(event)
    session.flush()
    return event
