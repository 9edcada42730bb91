"""A small world of surges, cases and brand replies, written as plain data so that a test can
both store it and compute what its figures must be in plain Python."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from socialcare.posts.models import Account, Post
from socialcare.surge.models import Surge, SurgeCase, SurgePost
from tests.factories import SLA_SECONDS, T0, make_account, make_case, make_post, make_reply

H = 3600.0


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@dataclass
class CaseSpec:
    """A customer's case: its posts' times, the brand's replies to it (each (time, is an
    acknowledgement)), its priority and language; which of its posts join the surge, and
    whether the case is linked to the surge."""

    posts: list[float]
    replies: list[tuple[float, bool]] = field(default_factory=list)
    priority: str = "P2"
    language: str | None = "en"
    in_surge: list[int] = field(default_factory=lambda: [0])
    linked: bool = True


@dataclass
class SurgeSpec:
    title: str
    started: float
    detected: float
    cases: list[CaseSpec]
    account: str = "acme"
    topic: str = "outage"


def world(title_a: str = "outage: app down") -> list[SurgeSpec]:
    """Two surges in the day [T0, T0 + 24 h), one the day before, one not detected by the
    moment the figures are taken (T0 + 36 h), and one of another brand."""
    a = SurgeSpec(
        title_a,
        started=1 * H,
        detected=1 * H + 240,
        cases=[
            CaseSpec([1 * H], [(1 * H + 600, False)]),  # answered in 10 min: within
            CaseSpec([1 * H + 60], [(3 * H + 60, False)]),  # answered in 2 h: late
            CaseSpec([1 * H + 120], priority="P3"),  # never answered: past its SLA
            # An acknowledgement after 1 min is no answer; the answer came after 30 min (P1).
            CaseSpec(
                [1 * H + 30], [(1 * H + 90, True), (1 * H + 1830, False)], "P1", "ru", linked=False
            ),
            # Linked to the surge without a post in it (an agent linked it).
            CaseSpec([1 * H + 300], [(1 * H + 900, False)], "P3", "ru", in_surge=[]),
            # A case answered before the surge began; its next post joined the surge and was
            # answered at 3 h: that reply, not the earlier one, is an answer to the surge.
            CaseSpec([600, 1 * H + 5], [(1200, False), (3 * H, False)], "P3", None, in_surge=[1]),
        ],
    )
    b = SurgeSpec(
        "billing <b>twice</b>",
        started=20 * H,
        detected=20 * H + 120,
        cases=[CaseSpec([20 * H], priority="P4", language="und")],  # still within its SLA
        topic="billing",
    )
    before = SurgeSpec("yesterday", -2 * H, -2 * H + 60, [CaseSpec([-2 * H])])
    unseen = SurgeSpec("late", 23 * H, 37 * H, [CaseSpec([23 * H])])
    other = SurgeSpec("other brand", 5 * H, 5 * H + 30, [CaseSpec([5 * H])], account="globex")
    return [a, b, before, unseen, other]


NOW = 36 * H
START, END = 0.0, 24 * H


def store(session: Session, specs: list[SurgeSpec]) -> dict[str, Account]:
    """Every surge, case, post and reply of specs, committed; the accounts by handle."""
    accounts: dict[str, Account] = {}
    for n, spec in enumerate(specs):
        if spec.account not in accounts:
            accounts[spec.account] = make_account(session, spec.account)
        account = accounts[spec.account]
        surge = Surge(
            key=f"{account.id}:{n}:0",
            account_id=account.id,
            title=spec.title,
            topic=spec.topic,
            started_at=at(spec.started),
            detected_at=at(spec.detected),
            last_post_at=at(spec.started),
        )
        session.add(surge)
        session.flush()
        for c in spec.cases:
            _store_case(session, account, surge, c)
    session.commit()
    return accounts


def _store_case(session: Session, account: Account, surge: Surge, c: CaseSpec) -> None:
    author = f"kim{surge.id}x{int(c.posts[0])}"
    first = make_post(
        session, account, created_at=at(c.posts[0]), author_handle=author, language=c.language
    )
    answers = [t for t, ack in c.replies if not ack]
    case = make_case(
        session,
        account,
        first,
        priority=c.priority,
        first_response_at=at(min(answers)) if answers else None,
    )
    posts = [first]
    for t in c.posts[1:]:
        posts.append(
            make_post(
                session,
                account,
                created_at=at(t),
                author_handle=author,
                case=case,
                language=c.language,
            )
        )
    for t, ack in c.replies:
        # Each reply answers the customer's latest post made before it.
        target = max((p for p in posts if p.created_at <= at(t)), key=lambda p: p.created_at)
        brand = make_post(
            session, account, "on it", created_at=at(t), is_brand=True, in_reply_to=target
        )
        if ack:
            reply = make_reply(
                session,
                case,
                "We are on it",
                kind="ack",
                state="sent",
                external_id=brand.external_id,
            )
            reply.in_reply_to_post_id = target.id
    for i in c.in_surge:
        p: Post = posts[i]
        session.add(SurgePost(surge_id=surge.id, post_id=p.id, created_at=p.created_at))
    if c.linked:
        session.add(SurgeCase(surge_id=surge.id, case_id=case.id))
    session.flush()


def reference(specs: list[SurgeSpec], account: str | None) -> list[dict[str, object]]:
    """What the surge figures must be for the period [START, END) as of NOW, in plain Python."""
    out = []
    for spec in sorted(specs, key=lambda s: s.started):
        if account is not None and spec.account != account:
            continue
        if not (START <= spec.started < END and spec.detected <= NOW):
            continue
        members = [c for c in spec.cases if c.linked or c.in_surge]
        posts = sum(len(c.in_surge) for c in spec.cases)
        within = missed = answered = 0
        replies: list[float] = []
        for c in members:
            allowed = SLA_SECONDS[c.priority]
            answers = sorted(t for t, ack in c.replies if not ack and t <= NOW)
            replies += [t for t in answers if t >= spec.started]
            if answers:
                answered += 1
                if answers[0] - c.posts[0] <= allowed:
                    within += 1
                else:
                    missed += 1
            elif NOW - c.posts[0] > allowed:
                missed += 1
        out.append(
            {
                "title": spec.title,
                "detect_s": spec.detected - spec.started,
                "posts": posts,
                "cases": len(members),
                "answered": answered,
                "first_answer_s": min(replies) - spec.started if replies else None,
                "within_sla": within,
                "missed_sla": missed,
                "sla_attainment": within / (within + missed) if within + missed else None,
            }
        )
    return out
