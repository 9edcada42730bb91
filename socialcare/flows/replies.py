"""Reply flows: publish a queued reply at most once; reconcile one whose outcome is unknown."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from socialcare.cases import outbox
from socialcare.cases.models import Reply
from socialcare.config import Settings, get_settings
from socialcare.db import session_scope, utcnow
from socialcare.errors import SourceError
from socialcare.flows.base import Enqueue, later
from socialcare.posts.models import Account
from socialcare.posts.service import account_ref
from socialcare.sources.base import AccountRef
from socialcare.sources.registry import get_source

log = logging.getLogger(__name__)


def _reply_account(session: Session, account: Account, settings: Settings) -> AccountRef:
    ref = account_ref(account)
    feed_id = (account.config or {}).get("feed")
    if account.source == "replay" and feed_id:
        from socialcare.sources.replay import with_clock

        feed = session.get(Account, feed_id)
        if feed is not None:
            speedup = float(feed.config.get("speedup", settings.replay_speedup))
            ref = with_clock(ref, dict(feed.cursors), speedup)
    return ref


def send_reply(reply_id: int, *, enqueue: Enqueue, settings: Settings | None = None) -> str:
    """Publish a queued reply at most once; returns the reply's state afterwards."""
    settings = settings or get_settings()
    with session_scope(settings) as session:
        if not outbox.begin_send(session=session, reply_id=reply_id):
            reply = session.get(Reply, reply_id)
            return reply.state if reply else "missing"
    with session_scope(settings) as session:
        reply, _, account, target = outbox.reply_target(session=session, reply_id=reply_id)
        ref, text, source_name = (
            _reply_account(session, account, settings),
            reply.text,
            account.source,
        )
        in_reply_to = target.external_id
    source = get_source(source_name, settings)
    try:
        sent = source.send_reply(ref, in_reply_to=in_reply_to, text=text)
    except SourceError as exc:
        with session_scope(settings) as session:
            state = outbox.record_failure(
                session=session,
                reply_id=reply_id,
                error=exc,
                max_attempts=settings.max_attempts,
                now=utcnow(),
            )
            if state == "unknown":
                later(session, enqueue, "reconcile_reply", reply_id)
        return state
    with session_scope(settings) as session:
        outbox.record_sent(session=session, reply_id=reply_id, sent=sent)
    return "sent"


def reconcile_reply(reply_id: int, *, enqueue: Enqueue, settings: Settings | None = None) -> str:
    """Settle a reply whose send outcome was unknown by reading the platform."""
    settings = settings or get_settings()
    with session_scope(settings) as session:
        reply, _, account, target = outbox.reply_target(session=session, reply_id=reply_id)
        if reply.state != "unknown":
            return reply.state
        ref, text, source_name = (
            _reply_account(session, account, settings),
            reply.text,
            account.source,
        )
        in_reply_to = target.external_id
    try:
        found = get_source(source_name, settings).find_reply(
            ref, in_reply_to=in_reply_to, text=text
        )
    except SourceError as exc:
        log.warning("reconcile of reply %s postponed: %s", reply_id, exc)
        return "unknown"
    with session_scope(settings) as session:
        if found is not None:
            outbox.record_sent(session=session, reply_id=reply_id, sent=found)
            return "sent"
        outbox.mark_not_published(session=session, reply_id=reply_id)
        return "failed"
