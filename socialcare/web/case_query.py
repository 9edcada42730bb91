"""The case page's reads: a case with its thread, replies (and their public pages), events and
the customer's earlier cases, as the page and /api/cases/{id} show them."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, object_session

from socialcare.cases.models import Case, Event, Reply
from socialcare.people.models import Agent, Team
from socialcare.posts.models import Account, Post, Score
from socialcare.sources.urls import post_url, web_address
from socialcare.web.queries import reason_labels


@dataclass
class CaseDetail:
    """Everything the case page shows."""

    case: Case
    account: Account | None
    team: str | None
    claimed_by: str | None
    posts: list[Post]
    score: Score | None
    reasons: list[str]
    replies: list[Reply] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    earlier: list[Case] = field(default_factory=list)  # the customer's other cases, newest first
    reply_urls: dict[int, str] = field(default_factory=dict)  # a sent reply's public page
    language: str | None = None  # of the case's first post
    routed: str | None = None  # why the case went to its first team (the case_opened event)


def reply_link(
    session: Session | None,
    reply: Reply,
    platform: str,
    handle: str | None,
    *,
    stored: Post | None = None,
    server: str = "",
) -> str | None:
    """The public page of a sent reply (see socialcare.sources.urls), or None. handle is the
    brand account's. The reply's stored post (given, or looked up in session, else in the
    reply's own session) supplies what the platform gave back (Mastodon's url, Bluesky's uri).
    A Mastodon reply is a status of the brand's own server: without MASTODON_API_BASE_URL
    (server), that server is the one its uri names."""
    if reply.state != "sent" or not reply.external_id:
        return None
    session = session if session is not None else object_session(reply)
    found: object = stored.raw if stored is not None else None
    if stored is None and session is not None and platform in ("mastodon", "bluesky"):
        found = session.scalar(
            select(Post.raw).where(Post.platform == platform, Post.external_id == reply.external_id)
        )
    raw = found if isinstance(found, dict) else None
    if not server and raw is not None and (uri := web_address(raw.get("uri"))):
        parts = urlsplit(uri)
        server = f"{parts.scheme}://{parts.netloc}"
    return post_url(platform, reply.external_id, handle=handle, raw=raw, server=server)


def case_detail(session: Session, case_id: int, *, server: str = "") -> CaseDetail | None:
    """The case, its thread in time order (with brand replies), score, replies and events.
    server is the Mastodon server's address, for a reply whose page was not given."""
    case = session.get(Case, case_id)
    if case is None:
        return None
    own_ids = select(Post.external_id).where(Post.case_id == case_id)
    thread = select(Post).where(
        or_(
            Post.case_id == case_id,
            Post.id == case.root_post_id,
            and_(
                Post.is_brand.is_(True),
                Post.platform == case.platform,
                Post.in_reply_to_external_id.in_(own_ids),
            ),
        )
    )
    posts = list(session.scalars(thread.order_by(Post.created_at, Post.id)))
    score = session.scalar(select(Score).where(Score.post_id == case.root_post_id))
    team = agent = None
    if case.team_id is not None:
        team = session.scalar(select(Team.name).where(Team.id == case.team_id))
    if case.claimed_by is not None:
        agent = session.scalar(select(Agent.handle).where(Agent.id == case.claimed_by))
    replies = session.scalars(
        select(Reply).where(Reply.case_id == case_id).order_by(Reply.created_at, Reply.id)
    )
    events = session.scalars(
        select(Event).where(Event.case_id == case_id).order_by(Event.at, Event.id)
    )
    earlier = session.scalars(
        select(Case)
        .where(
            Case.account_id == case.account_id,
            Case.customer_external_id == case.customer_external_id,
            Case.id != case.id,
        )
        .order_by(Case.opened_at.desc())
        .limit(20)
    )
    account = session.get(Account, case.account_id)
    replies_list = list(replies)
    brand_posts = {p.external_id: p for p in posts if p.is_brand}
    handle = account.handle if account is not None else None
    links = {
        r.id: link
        for r in replies_list
        if (
            link := reply_link(
                session,
                r,
                case.platform,
                handle,
                stored=brand_posts.get(r.external_id or ""),
                server=server,
            )
        )
    }
    events_list = list(events)
    opened = next((e for e in events_list if e.kind == "case_opened"), None)
    routed = str((opened.data or {}).get("rule") or "") if opened is not None else ""
    return CaseDetail(
        language=next((p.language for p in posts if p.id == case.root_post_id), None),
        routed=routed or None,
        earlier=list(earlier),
        case=case,
        account=account,
        team=team,
        claimed_by=agent,
        posts=posts,
        score=score,
        reasons=reason_labels(score.reasons) if score is not None else [],
        replies=replies_list,
        events=events_list,
        reply_urls=links,
    )
