"""The reply outbox: queued -> sending -> sent | failed | unknown, each move its own commit.

A reply is claimed (state sending) in the database before the platform is called, so two workers
never send it; an outcome that is not known becomes `unknown` and is reconciled by reading the
platform, never by sending again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from socialcare.cases import lengths
from socialcare.cases.events import WORKER, record
from socialcare.cases.models import Case, Event, Reply
from socialcare.cases.service import apply_brand_reply, latest_customer_post
from socialcare.cases.work import get_case
from socialcare.db import changed_rows, utcnow
from socialcare.errors import Conflict, NotFound, RateLimited, ReplyOutcomeUnknown, SourceError
from socialcare.people.models import Agent
from socialcare.posts.models import STAGE_ROUTED, Account, Post
from socialcare.posts.service import ingest_posts
from socialcare.sources.base import SentReply

DEFAULT_LIMIT = lengths.DEFAULT_RULE.limit


def create_reply(*, session: Session, case_id: int, agent: Agent, text: str) -> Reply:
    """Queue a public reply to the case's latest customer post; the agent must hold the case."""
    text = text.strip()
    case = get_case(session=session, case_id=case_id)
    if case.status != "claimed" or case.claimed_by != agent.id:
        raise Conflict(f"claim case {case_id} before replying (it is {case.status})")
    if not text:
        raise ValueError("a reply needs text")
    lengths.check(case.platform, text)
    target = latest_customer_post(session=session, case_id=case_id)
    if target is None:
        raise NotFound(f"case {case_id} has no customer post to answer")
    reply = Reply(
        case_id=case_id,
        agent_id=agent.id,
        in_reply_to_post_id=target.id,
        text=text,
        state="queued",
        next_attempt_at=utcnow(),
    )
    session.add(reply)
    session.flush()
    _reply_event(session, reply, "reply_queued", actor=f"agent:{agent.handle}")
    return reply


def _reply_event(
    session: Session, reply: Reply, kind: str, *, actor: str = WORKER, **data: Any
) -> None:
    """An audit event about reply (on its case), by the worker unless actor says who."""
    record(session, actor=actor, kind=kind, case_id=reply.case_id, reply_id=reply.id, **data)


def begin_send(*, session: Session, reply_id: int) -> bool:
    """Move a queued reply to sending (compare-and-set); False if it is not ours to send.

    When a reply is due is the sweep's business (it enqueues retries at next_attempt_at); this
    step only makes sure that one message, however often delivered, sends it once."""
    changed = changed_rows(
        session.execute(
            update(Reply)
            .where(Reply.id == reply_id, Reply.state == "queued")
            .values(state="sending", attempts=Reply.attempts + 1, next_attempt_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    )
    if not changed:
        return False
    reply = session.get(Reply, reply_id)
    if reply is not None:  # open pages show it as sending (the live feed reads events)
        _reply_event(session, reply, "reply_sending", attempt=reply.attempts)
    return True


def reply_target(*, session: Session, reply_id: int) -> tuple[Reply, Case, Account, Post]:
    reply = session.get(Reply, reply_id)
    if reply is None:
        raise NotFound(f"no reply {reply_id}")
    case = get_case(session=session, case_id=reply.case_id)
    account = session.get(Account, case.account_id)
    post = session.get(Post, reply.in_reply_to_post_id)
    if account is None or post is None:
        raise NotFound(f"reply {reply_id} has no account or target post")
    return reply, case, account, post


def record_sent(
    *, session: Session, reply_id: int, sent: SentReply, via: str = "socialcare"
) -> None:
    """The platform published the reply: store it as a brand post and count it on the case."""
    reply, _case, account, _ = reply_target(session=session, reply_id=reply_id)
    if reply.state == "sent":
        return
    reply.state = "sent"
    reply.external_id = sent.external_id
    reply.sent_at = sent.created_at
    reply.last_error = None
    ingest_posts(session=session, account=account, posts=[sent.post], observed_at=sent.created_at)
    post = session.execute(
        select(Post).where(
            Post.platform == sent.post.platform, Post.external_id == sent.external_id
        )
    ).scalar_one()
    post.stage = STAGE_ROUTED
    post.next_step_at = None
    if reply.kind != "ack":  # an acknowledgement is public, but it is not an answer
        case = apply_brand_reply(session=session, brand_post=post, via=via)
        if case is not None and case.first_response_post_id == post.id:
            _own_first_response(session, case, post, via)
    kind = "ack_sent" if reply.kind == "ack" else "reply_sent"
    _reply_event(session, reply, kind, external_id=sent.external_id)


def _own_first_response(session: Session, case: Case, post: Post, via: str) -> None:
    """A poll may store the reply's post before its send is settled (an unknown outcome, then
    reconciled), and count it as seen on the platform: it was sent from here."""
    if case.first_response_via == via:
        return
    case.first_response_via = via
    record(
        session,
        actor=WORKER,
        kind="first_response",
        case_id=case.id,
        post_id=post.id,
        via=via,
        at=post.created_at.isoformat(),
        corrected=True,
    )


def attempt_marks(*, session: Session, reply: Reply, target: Post) -> tuple[datetime, set[str]]:
    """What ties a published post to this reply's sends, for reconciling it: when its first
    send began, and the ids of the brand's posts that cannot be it (other replies' to the same
    post, and brand answers to it stored before that send)."""
    began = session.execute(
        select(func.min(Event.at)).where(Event.reply_id == reply.id, Event.kind == "reply_sending")
    ).scalar_one_or_none()
    sent_after = began or reply.created_at
    if sent_after.tzinfo is None:
        sent_after = sent_after.replace(tzinfo=UTC)
    others = session.execute(
        select(Reply.external_id).where(
            Reply.in_reply_to_post_id == target.id,
            Reply.id != reply.id,
            Reply.external_id.is_not(None),
        )
    ).scalars()
    earlier = session.execute(
        select(Post.external_id).where(
            Post.platform == target.platform,
            Post.in_reply_to_external_id == target.external_id,
            Post.is_brand.is_(True),
            Post.ingested_at < sent_after,
        )
    ).scalars()
    return sent_after, {str(i) for i in others if i} | set(earlier)


def record_failure(
    *, session: Session, reply_id: int, error: Exception, max_attempts: int, now: datetime
) -> str:
    """Decide what a failed send means for the reply; returns its new state."""
    reply = session.get(Reply, reply_id)
    if reply is None:
        raise NotFound(f"no reply {reply_id}")
    reply.last_error = str(error)[:1000]
    if isinstance(error, ReplyOutcomeUnknown):
        reply.state = "unknown"
        reply.next_attempt_at = now
    elif isinstance(error, RateLimited) and reply.attempts < max_attempts:
        reply.state = "queued"
        reply.next_attempt_at = error.retry_after or now + timedelta(minutes=1)
    elif isinstance(error, SourceError) and not error.permanent and reply.attempts < max_attempts:
        reply.state = "queued"
        reply.next_attempt_at = now + timedelta(seconds=min(600, 15 * 2**reply.attempts))
    else:
        reply.state = "failed"
    _reply_event(session, reply, f"reply_{reply.state}", error=reply.last_error)
    return reply.state


def mark_not_published(*, session: Session, reply_id: int) -> None:
    """Reconciliation found no such post on the platform: fail it for a person to retry."""
    reply = session.get(Reply, reply_id)
    if reply is not None and reply.state == "unknown":
        reply.state = "failed"
        reply.last_error = "not found on the platform after an unknown outcome; retry by hand"
        _reply_event(session, reply, "reply_failed", error=reply.last_error)


def retry_reply(*, session: Session, reply_id: int, agent: Agent) -> Reply:
    """A person asks to send a failed reply again, or to settle one whose outcome is unknown:
    that one stays unknown and its send (flows.send_reply) reconciles it with the platform,
    never posting it again (found: sent; confirmed absent: failed, and retryable)."""
    reply = session.get(Reply, reply_id)
    if reply is None:
        raise NotFound(f"no reply {reply_id}")
    if reply.state == "unknown":
        reply.next_attempt_at = utcnow()
        _reply_event(session, reply, "reply_retried", actor=f"agent:{agent.handle}", reconcile=True)
        return reply
    if reply.state != "failed":
        raise Conflict(
            f"reply {reply_id} is {reply.state}; only failed or unknown replies can be retried"
        )
    reply.state = "queued"
    reply.attempts = 0
    reply.next_attempt_at = utcnow()
    _reply_event(session, reply, "reply_retried", actor=f"agent:{agent.handle}")
    return reply
