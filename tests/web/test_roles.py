"""The README's role table as a matrix: every role x every case action x the case's state,
through the JSON API (and the case page) on both databases, with the status each cell must get
and its effect: an allowed action changed what it should, a refused one changed nothing.

The table: agents claim, reply, note, escalate, resolve and dismiss the cases they hold
(claimed, or answered by their reply and not yet closed), and retry a failed reply; leads (and
admins) do all of that on any case, take over and release. Where it is silent: a public reply
always comes from the case's holder (a lead takes the case over first), a closed case takes no
work but a lead's note, and a case nobody holds must be claimed before an agent works on it.
409 is "the case is not in the state this needs (held by you, open)"; 403 is "your role never
may" (an agent releasing someone else's claim, reading the audit log).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from socialcare.cases.models import Case, Event, Reply
from socialcare.cases.workspace_models import CaseView
from socialcare.config import Settings
from socialcare.db import utcnow
from socialcare.people.models import Agent, Team
from socialcare.people.service import create_token
from socialcare.web import create_app
from tests.factories import (
    make_account,
    make_agent,
    make_case,
    make_event,
    make_post,
    make_reply,
    make_team,
)

ROLES = ("agent", "lead", "admin")
# Held by the actor, answered by the actor's reply (still theirs to close), held by another
# agent, queued and held by nobody, closed.
STATES = ("mine", "answered", "other", "queued", "closed")


@dataclass(frozen=True)
class Action:
    method: str
    url: str  # {case} and {reply} are filled in
    body: dict[str, Any] | None
    # The status for an agent and for a lead (admins: as leads), per state.
    agent: dict[str, int]
    lead: dict[str, int]


def every(code: int) -> dict[str, int]:
    return dict.fromkeys(STATES, code)


def holder_only(ok: int) -> dict[str, int]:
    return {"mine": ok, "answered": ok, "other": 409, "queued": 409, "closed": 409}


def open_cases(ok: int) -> dict[str, int]:
    return {"mine": ok, "answered": ok, "other": ok, "queued": ok, "closed": 409}


def claimed_only(ok: int, other: int) -> dict[str, int]:
    """Actions on a claim itself: the case must be claimed right now."""
    return {"mine": ok, "answered": 409, "other": other, "queued": 409, "closed": 409}


MATRIX: dict[str, Action] = {
    "read case": Action("GET", "/api/cases/{case}", None, every(200), every(200)),
    "case page": Action("GET", "/cases/{case}", None, every(200), every(200)),
    "read audit": Action("GET", "/api/audit?case_id={case}", None, every(403), every(200)),
    "claim": Action(
        "POST",
        "/api/cases/{case}/claim",
        None,
        {"mine": 200, "answered": 409, "other": 409, "queued": 200, "closed": 409},
        {"mine": 200, "answered": 409, "other": 409, "queued": 200, "closed": 409},
    ),
    "release": Action(
        "POST", "/api/cases/{case}/release", None, claimed_only(200, 403), claimed_only(200, 200)
    ),
    "heartbeat": Action(
        "POST", "/api/cases/{case}/heartbeat", {"active": True}, every(200), every(200)
    ),
    # A public reply needs the claim itself (a lead takes the case over first); a follow-up on
    # an answered case too, so that two people never answer one customer at once.
    "reply": Action(
        "POST",
        "/api/cases/{case}/replies",
        {"text": "Sorry!"},
        claimed_only(201, 409),
        claimed_only(201, 409),
    ),
    # A failed reply may be sent again on any open case nobody has claimed.
    "retry reply": Action(
        "POST",
        "/api/replies/{reply}/retry",
        None,
        {"mine": 200, "answered": 200, "other": 409, "queued": 200, "closed": 409},
        open_cases(200),
    ),
    "note": Action(
        "POST",
        "/api/cases/{case}/notes",
        {"text": "rang them"},
        holder_only(201),
        every(201),
    ),
    "escalate": Action(
        "POST",
        "/api/cases/{case}/escalate",
        {"reason": "refund", "team": "support"},
        holder_only(200),
        open_cases(200),
    ),
    "ask a lead": Action(
        "POST",
        "/api/cases/{case}/escalate",
        {"reason": "angry", "to_lead": True},
        holder_only(200),
        open_cases(200),
    ),
    "resolve": Action(
        "POST",
        "/api/cases/{case}/resolve",
        {"reason": "done"},
        holder_only(200),
        open_cases(200),
    ),
    "dismiss": Action(
        "POST",
        "/api/cases/{case}/dismiss",
        {"reason": "spam"},
        holder_only(200),
        open_cases(200),
    ),
}


@dataclass
class Cell:
    action: str
    role: str
    state: str
    case_id: int
    reply_id: int


def snapshot(session: Session, case_id: int) -> tuple[Any, ...]:
    """What a refused action must leave alone: the case's state and its history."""
    session.expire_all()
    case = session.get_one(Case, case_id)
    events = session.scalar(select(func.count()).where(Event.case_id == case_id))
    replies = tuple(
        session.execute(
            select(Reply.id, Reply.state).where(Reply.case_id == case_id).order_by(Reply.id)
        ).all()
    )
    fields = (case.status, case.claimed_by, case.team_id, case.needs_lead, case.escalated)
    priority = case.priority
    session.rollback()  # end the read: on SQLite a transaction holds the write lock
    return (*fields, priority, events, replies)


def effect(session: Session, cell: Cell, actor: Agent, support: Team, body: Any) -> str | None:
    """What is wrong with an allowed action's effect, if anything."""
    session.expire_all()
    case = session.get_one(Case, cell.case_id)
    reply = session.get_one(Reply, cell.reply_id)
    mine = case.claimed_by == actor.id and case.status == "claimed"
    checks: dict[str, Callable[[], bool]] = {
        "read case": lambda: (
            body["case"]["id"] == case.id and (body["history"] is None) == (actor.role == "agent")
        ),
        "case page": lambda: f"#{case.id}" in body or case.customer_handle in body,
        "read audit": lambda: bool(body) and {e["case_id"] for e in body} == {case.id},
        "claim": lambda: mine,
        "release": lambda: case.status == "queued" and case.claimed_by is None,
        "heartbeat": lambda: session.get(CaseView, (case.id, actor.id)) is not None,
        "reply": lambda: (
            session.scalar(
                select(func.count()).where(
                    Reply.case_id == case.id, Reply.agent_id == actor.id, Reply.state == "queued"
                )
            )
            == 1
        ),
        "retry reply": lambda: reply.state == "queued",
        "note": lambda: (
            session.scalar(
                select(func.count()).where(
                    Event.case_id == case.id,
                    Event.kind == "note",
                    Event.actor == f"agent:{actor.handle}",
                )
            )
            == 1
        ),
        "escalate": lambda: (
            case.team_id == support.id and case.status == "queued" and case.escalated
        ),
        "ask a lead": lambda: case.needs_lead,
        "resolve": lambda: case.status == "resolved",
        "dismiss": lambda: case.status == "dismissed",
    }
    seen = checks[cell.action]()
    session.rollback()
    return None if seen else f"no effect seen ({snapshot(session, cell.case_id)})"


def test_every_role_may_do_exactly_what_the_role_table_says_to_every_kind_of_case(
    settings: Settings, engine: object, session: Session
) -> None:
    app = create_app(settings, enqueue=lambda *args: None)
    account = make_account(session)
    support, billing = make_team(session, "support"), make_team(session, "billing")
    other = make_agent(session, "olga", role="agent")
    actors, bearers = {}, {}
    for role in ROLES:
        actors[role] = make_agent(session, f"the-{role}", role=role)
        actors[role].teams = [support]  # every case below is billing's: another team's
        secret, _ = create_token(session=session, agent=actors[role], name="t", actor="tests")
        bearers[role] = {"Authorization": f"Bearer {secret}"}
    now = utcnow()
    cells: list[Cell] = []
    for name in MATRIX:
        for role in ROLES:
            for state in STATES:
                post = make_post(session, account, f"{name} {role} {state}")
                case = make_case(session, account, post, team=billing)
                make_event(session, case, "case_opened", actor="worker")
                if state in ("mine", "answered", "other"):
                    case.status = "responded" if state == "answered" else "claimed"
                    case.claimed_by = (other if state == "other" else actors[role]).id
                    case.claimed_at, case.claim_expires_at = now, now + timedelta(hours=1)
                elif state == "closed":
                    case.status, case.closed_at, case.close_reason = "resolved", now, "done"
                reply = make_reply(session, case, state="failed", last_error="503")
                cells.append(Cell(name, role, state, case.id, reply.id))
    session.commit()

    failures: list[str] = []
    with TestClient(app, raise_server_exceptions=False) as client:
        for cell in cells:
            action = MATRIX[cell.action]
            table = action.agent if cell.role == "agent" else action.lead
            want = table[cell.state]
            before = snapshot(session, cell.case_id)
            url = action.url.format(case=cell.case_id, reply=cell.reply_id)
            r = client.request(action.method, url, json=action.body, headers=bearers[cell.role])
            what = f"{cell.action} by {cell.role} on a case {cell.state}: {r.status_code}"
            if r.status_code != want:
                failures.append(f"{what}, want {want}: {r.text[:160]!r}")
            elif want >= 400:
                if snapshot(session, cell.case_id) != before:
                    failures.append(f"{what} was refused but changed the case")
                if "detail" not in r.json():
                    failures.append(f"{what} has no detail: {r.text[:160]!r}")
            else:
                body = r.text if url.startswith("/cases/") else r.json()
                problem = effect(session, cell, actors[cell.role], support, body)
                if problem:
                    failures.append(f"{what}: {problem}")
    assert not failures, f"{len(failures)} of {len(cells)} cells:\n" + "\n".join(failures)
    assert len(cells) == len(MATRIX) * len(ROLES) * len(STATES)


def test_next_case_claims_for_every_role_and_never_a_case_someone_holds(
    settings: Settings, engine: object, session: Session
) -> None:
    app = create_app(settings, enqueue=lambda *args: None)
    account = make_account(session)
    billing = make_team(session, "billing")
    other = make_agent(session, "olga", role="agent")
    held = make_case(session, account, make_post(session, account, "held"), team=billing)
    held.status, held.claimed_by = "claimed", other.id
    held.claim_expires_at = utcnow() + timedelta(hours=1)
    waiting = {}
    headers = {}
    for minutes, role in enumerate(ROLES):
        post = make_post(
            session, account, role, created_at=held.opened_at + timedelta(minutes=minutes + 1)
        )
        waiting[role] = make_case(session, account, post, team=billing).id
        agent = make_agent(session, f"the-{role}", role=role)
        secret, _ = create_token(session=session, agent=agent, name="t", actor="tests")
        headers[role] = {"Authorization": f"Bearer {secret}"}
    session.commit()
    with TestClient(app) as client:
        for role in ROLES:  # oldest first: each role gets the case waiting longest
            r = client.post("/api/cases/next", json={"team": "billing"}, headers=headers[role])
            assert r.status_code == 200 and r.json()["id"] == waiting[role], r.text
            assert r.json()["claimed_by"] == f"the-{role}"
        r = client.post("/api/cases/next", json={"team": "billing"}, headers=headers["lead"])
        assert r.status_code == 200 and r.json() is None
    session.expire_all()
    assert session.get_one(Case, held.id).claimed_by == other.id
