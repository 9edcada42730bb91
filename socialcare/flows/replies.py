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
from socialcare.sources.base import AccountRef, SentReply
from socialcare.sources.registry import get_source

log = logging.getLogger(__name__)


def _reply_account(session: Session, account: Account, settings: Settings) -> AccountRef:
    learned = (account.cursors or {}).get("account_id")
    if not account.external_id and isinstance(learned, str) and 0 < len(learned) <= 64:
        # A poll learned the brand's id on the platform (Mastodon keeps it in its cursors):
        # stored, so no reply has to ask the platform who the brand is.
        account.external_id = learned
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
        ours = outbox.begin_send(session=session, reply_id=reply_id)
        if not ours:
            reply = session.get(Reply, reply_id)
            state = reply.state if reply else "missing"
    if not ours:
        if state == "unknown":
            # A retried reply whose outcome is unknown is looked for, never sent again.
            return reconcile_reply(reply_id, enqueue=enqueue, settings=settings)
        return state
    with session_scope(settings) as session:
        reply, _, account, target = outbox.reply_target(session=session, reply_id=reply_id)
        ref, text, source_name = (
            _reply_account(session, account, settings),
            reply.text,
            account.source,
        )
        in_reply_to, account_id = target.external_id, account.id
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
        _remember_brand_id(session, account_id, sent)
    return "sent"


def _remember_brand_id(session: Session, account_id: int, sent: SentReply) -> None:
    """The brand's id on the platform, as its published reply shows it, kept on the account
    the first time it is learned."""
    account = session.get(Account, account_id)
    author = sent.post.author_external_id
    if account is not None and not account.external_id and sent.post.is_brand and author:
        account.external_id = author[:64]


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
        in_reply_to, account_id = target.external_id, account.id
        sent_after, known = outbox.attempt_marks(session=session, reply=reply, target=target)
    try:
        found = get_source(source_name, settings).find_reply(
            ref, in_reply_to=in_reply_to, text=text, sent_after=sent_after, known=known
        )
    except SourceError as exc:
        log.warning("reconcile of reply %s postponed: %s", reply_id, exc)
        return "unknown"
    with session_scope(settings) as session:
        if found is not None:
            outbox.record_sent(session=session, reply_id=reply_id, sent=found)
            _remember_brand_id(session, account_id, found)
            return "sent"
        outbox.mark_not_published(session=session, reply_id=reply_id)
        return "failed"
