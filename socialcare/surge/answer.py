"""One answer to a whole surge: a lead's template, previewed per customer, queued as one outbox
reply per open case (each exactly once), and the incident closed with its cases.

The template may hold {handle} (the customer's handle) and {quote} (the start of the customer's
own post, cut so the reply fits the platform's length). Each reply is an ordinary outbox row
(socialcare.cases.outbox) that the send_reply flow publishes, retries and reconciles; the
customer's first response is recorded when it is published, as for any agent's reply.

Exactly once per (surge, case): the surge's row is locked for the send (FOR UPDATE on
PostgreSQL; a SQLite transaction holds the write lock from BEGIN), and the surge's timeline
holds one "case_answered" event per answered case, read under that lock. Two sends at once, or
one form posted twice, queue each customer's reply once.

What happens to cases linked after the send is the lead's choice, kept in the timeline as the
latest "answer_set" event: "wait" (for an agent, the default) or "same" (the same answer is
queued for them as they are linked, socialcare.surge.incidents.link_cases).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import select
from sqlalchemy.orm import Session

from socialcare.auth.roles import Permission
from socialcare.cases import actions, lengths
from socialcare.cases.events import record as record_case
from socialcare.cases.models import OPEN_STATUSES, Case, Reply
from socialcare.cases.service import latest_customer_post
from socialcare.errors import Conflict, NotFound
from socialcare.people.models import Agent
from socialcare.posts.models import Post
from socialcare.surge import incidents
from socialcare.surge.answer_text import check_template, render
from socialcare.surge.models import Surge, SurgeCase, SurgeEvent, SurgePost

AFTER_SEND = ("wait", "same")  # new cases after the send: wait for an agent, or the same answer
ANSWERABLE = ("new", "queued", "claimed")  # "responded" cases have an answer already
IN_FLIGHT = ("queued", "sending", "unknown")
CLOSE_REASON = "surge resolved"
PREVIEW_COUNT = 5


@dataclass(frozen=True)
class Target:
    """An open case of the surge that the answer would go to."""

    case_id: int
    platform: str
    handle: str
    post_id: int  # the customer's latest post: the one answered
    post_text: str


@dataclass(frozen=True)
class Preview:
    case_id: int
    handle: str
    text: str
    length: int
    limit: int


@dataclass(frozen=True)
class Plan:
    """What a send would do: the first customers' replies, and how many cases it reaches."""

    previews: list[Preview]
    to_answer: int
    answered_before: int  # cases this surge's answer reached already
    skipped: int  # open cases answered otherwise, or with an agent's reply on its way


@dataclass(frozen=True)
class SendResult:
    reply_ids: list[int]
    answered_before: int
    skipped: int
    surge: Surge


class Targets(TypedDict):
    """A surge's open cases for its answer: those it goes to, and how many it passes over."""

    targets: list[Target]
    before: int  # answered before (by this surge, or otherwise)
    skipped: int  # not answerable now (status, a reply in flight, no customer post)


def _targets(session: Session, surge_id: int, case_ids: Sequence[int] | None = None) -> Targets:
    """The surge's open cases by status: those the answer goes to (with their latest customer
    post), and how many were answered before (by this surge, or otherwise)."""
    stmt = (
        select(Case)
        .join(SurgeCase, SurgeCase.case_id == Case.id)
        .where(SurgeCase.surge_id == surge_id, Case.status.in_(OPEN_STATUSES))
        .order_by(Case.id)
    )
    if case_ids is not None:
        stmt = stmt.where(Case.id.in_(list(case_ids)))
    cases = list(session.execute(stmt).scalars())
    done = answered_cases(session=session, surge_id=surge_id)
    busy = set(
        session.execute(
            select(Reply.case_id).where(
                Reply.case_id.in_([c.id for c in cases]),
                Reply.kind == "answer",
                Reply.state.in_(IN_FLIGHT),
            )
        ).scalars()
    )
    out: Targets = {"targets": [], "before": 0, "skipped": 0}
    for case in cases:
        if case.id in done:
            out["before"] += 1
            continue
        if case.status not in ANSWERABLE or case.id in busy:
            out["skipped"] += 1
            continue
        post = latest_customer_post(session=session, case_id=case.id)
        if post is None:
            out["skipped"] += 1
            continue
        out["targets"].append(
            Target(case.id, case.platform, case.customer_handle, post.id, post.text)
        )
    return out


def answered_cases(*, session: Session, surge_id: int) -> set[int]:
    """The cases this surge's answer was queued for."""
    details = session.execute(
        select(SurgeEvent.detail).where(
            SurgeEvent.surge_id == surge_id, SurgeEvent.kind == "case_answered"
        )
    ).scalars()
    return {int(d["case_id"]) for d in details if "case_id" in d}


def preview(*, session: Session, agent: Agent, surge_id: int, text: str) -> Plan:
    """The answer as the first customers would read it, and how many it reaches; ValueError
    when it is too long for any customer (the whole cluster is checked)."""
    actions.require(agent, Permission.SURGE_MANAGE)
    template = check_template(text)
    if session.get(Surge, surge_id) is None:
        raise NotFound(f"no surge {surge_id}")
    found = _targets(session, surge_id)
    previews = []
    for i, t in enumerate(found["targets"]):
        body = render(template, handle=t.handle, quote=t.post_text, platform=t.platform)
        if i < PREVIEW_COUNT:
            limit = lengths.rule_for(t.platform).limit
            length = lengths.length(t.platform, body)
            previews.append(Preview(t.case_id, t.handle, body, length, limit))
    return Plan(previews, len(found["targets"]), found["before"], found["skipped"])


def _locked_surge(session: Session, surge_id: int) -> Surge:
    surge = session.execute(
        select(Surge)
        .where(Surge.id == surge_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if surge is None:
        raise NotFound(f"no surge {surge_id}")
    return surge


def _queue(
    session: Session,
    surge_id: int,
    targets: Sequence[Target],
    texts: Sequence[str],
    *,
    agent_id: int | None,
    actor: str,
    now: datetime,
) -> list[int]:
    """One outbox reply per target, each with its case's event and the surge's."""
    ids = []
    for target, body in zip(targets, texts, strict=True):
        reply = Reply(
            case_id=target.case_id,
            agent_id=agent_id,
            in_reply_to_post_id=target.post_id,
            text=body,
            state="queued",
            next_attempt_at=now,
        )
        session.add(reply)
        session.flush()
        record_case(
            session,
            actor=actor,
            kind="reply_queued",
            case_id=target.case_id,
            reply_id=reply.id,
            surge_id=surge_id,
        )
        incidents.record(
            session,
            surge_id,
            "case_answered",
            at=now,
            actor=actor,
            detail={"case_id": target.case_id, "reply_id": reply.id},
        )
        ids.append(reply.id)
    return ids


def send(
    *, session: Session, agent: Agent, surge_id: int, text: str, after_send: str, now: datetime
) -> SendResult:
    """Queue the answer for every open case of the surge not answered yet (the caller commits,
    then enqueues each reply's send); records 'answered' on the surge and the lead's choice for
    cases linked later. Nothing is queued when the answer does not fit any one customer."""
    actions.require(agent, Permission.SURGE_MANAGE)
    template = check_template(text)
    if after_send not in AFTER_SEND:
        raise ValueError(f"after_send must be one of {', '.join(AFTER_SEND)}")
    surge = _locked_surge(session, surge_id)
    if surge.status == "resolved":
        raise Conflict(f"surge {surge_id} is resolved: it takes no answer")
    found = _targets(session, surge_id)
    targets: list[Target] = found["targets"]
    texts = [
        render(template, handle=t.handle, quote=t.post_text, platform=t.platform) for t in targets
    ]
    actor = actions.actor_label(agent)
    reply_ids = _queue(session, surge_id, targets, texts, agent_id=agent.id, actor=actor, now=now)
    incidents.record(
        session,
        surge_id,
        "answer_set",
        at=now,
        actor=actor,
        detail={
            "text": template,
            "after_send": after_send,
            "agent_id": agent.id,
            "queued": len(reply_ids),
        },
    )
    if surge.status in ("open", "acknowledged"):
        surge = incidents.mark_answered(session=session, surge_id=surge_id, actor=actor, now=now)
    return SendResult(reply_ids, found["before"], found["skipped"], surge)


def setting(*, session: Session, surge_id: int) -> dict[str, Any] | None:
    """The surge's answer and the lead's choice for later cases (the latest 'answer_set')."""
    row = session.execute(
        select(SurgeEvent)
        .where(SurgeEvent.surge_id == surge_id, SurgeEvent.kind == "answer_set")
        .order_by(SurgeEvent.at.desc(), SurgeEvent.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if row is None:
        return None
    return {**row.detail, "by": row.actor, "at": row.at}


def answer_linked(
    *, session: Session, pairs: Sequence[tuple[int, int]], now: datetime
) -> list[int]:
    """Cases just linked to surges whose lead chose "same answer": queue that answer for each
    (once); returns the replies to send. A case the answer does not fit waits for an agent."""
    by_surge: dict[int, list[int]] = {}
    for surge_id, case_id in pairs:
        by_surge.setdefault(surge_id, []).append(case_id)
    reply_ids: list[int] = []
    for surge_id in sorted(by_surge):
        chosen = setting(session=session, surge_id=surge_id)
        if chosen is None or chosen.get("after_send") != "same":
            continue
        surge = _locked_surge(session, surge_id)
        if surge.status == "resolved":
            continue
        found = _targets(session, surge_id, by_surge[surge_id])
        fits, texts = [], []
        for t in found["targets"]:
            try:
                texts.append(
                    render(chosen["text"], handle=t.handle, quote=t.post_text, platform=t.platform)
                )
                fits.append(t)
            except ValueError as exc:
                incidents.record(
                    session,
                    surge_id,
                    "case_not_answered",
                    at=now,
                    detail={"case_id": t.case_id, "reason": str(exc)},
                )
        agent_id = chosen.get("agent_id")
        reply_ids += _queue(
            session,
            surge_id,
            fits,
            texts,
            agent_id=int(agent_id) if agent_id is not None else None,
            actor=str(chosen["by"]),
            now=now,
        )
    return reply_ids


def resolve(*, session: Session, agent: Agent, surge_id: int, now: datetime) -> list[Case]:
    """Close the incident and its open cases (resolved, reason "surge resolved"), each through
    the cases service with its event; answered cases keep their history."""
    actions.require(agent, Permission.SURGE_MANAGE)
    actor = actions.actor_label(agent)
    _locked_surge(session, surge_id)
    incidents.resolve(session=session, surge_id=surge_id, actor=actor, now=now)
    open_ids = session.execute(
        select(Case.id)
        .join(SurgeCase, SurgeCase.case_id == Case.id)
        .where(SurgeCase.surge_id == surge_id, Case.status.in_(OPEN_STATUSES))
        .order_by(Case.id)
    ).scalars()
    closed = [
        actions.close(
            session=session, agent=agent, case_id=case_id, status="resolved", reason=CLOSE_REASON
        )
        for case_id in list(open_ids)
    ]
    incidents.record(
        session, surge_id, "cases_closed", at=now, actor=actor, detail={"count": len(closed)}
    )
    return closed


def sample_posts(*, session: Session, surge_id: int, limit: int = 10) -> list[Post]:
    """A sample of the surge's posts: the closest to its cluster first."""
    return list(
        session.execute(
            select(Post)
            .join(SurgePost, SurgePost.post_id == Post.id)
            .where(SurgePost.surge_id == surge_id)
            .order_by(SurgePost.similarity.desc(), Post.id)
            .limit(limit)
        ).scalars()
    )
