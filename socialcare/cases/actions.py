"""What people do with cases, as one service layer for the web pages, the JSON API and the CLI.

Each function takes the acting agent, checks what their role allows, does the work through the
case services (socialcare.cases.work, socialcare.cases.outbox) and records an event. None of
them commit or enqueue: callers commit, then enqueue the send of any reply returned.

Who may act on which case (the role table in docs/workspace.md):
- agents work on the cases they hold (claimed, or answered by their reply): reply, note,
  escalate, resolve, dismiss, release. A case nobody holds must be claimed first, and a case
  someone else holds is theirs: both are Conflict (the case is not in the state the action
  needs). Retrying a failed reply is the one thing an agent may also do on an open case nobody
  has claimed.
- leads and admins do all of that on any open case, and release (take over) anyone's claim;
  an agent releasing someone else's claim is Forbidden. They may also note closed cases.
- a public reply always comes from the case's holder, whatever the role: a lead takes the case
  over (release, claim) before answering, so two people never answer one customer at once.
- a closed case takes no work at all (Conflict), only a lead's or admin's note.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from socialcare.auth.roles import Permission, allows
from socialcare.cases import outbox, public_text, work
from socialcare.cases.events import record
from socialcare.cases.models import OPEN_STATUSES, Case, Reply
from socialcare.cases.workspace_models import CannedReply, CaseView
from socialcare.db import changed_rows, insert_for
from socialcare.errors import Conflict, Forbidden, NotFound
from socialcare.people.models import Agent, Team

# A case is someone's while claimed, and once their reply answered it (until it is closed or
# the customer writes again and it returns to the queue).
HELD_STATUSES = ("claimed", "responded")
NOTE_LIMIT = 5000
REASON_LIMIT = 1000
# A browser that has a case open says so this often; a view older than VIEW_FRESH is gone.
VIEW_FRESH = timedelta(seconds=45)


def actor_label(agent: Agent) -> str:
    return f"agent:{agent.handle}"


def require(agent: Agent, permission: Permission) -> None:
    """Forbidden unless the agent's role holds permission."""
    if not allows(agent.role, permission):
        raise Forbidden(f"{agent.role} may not {permission.value}")


def _locked_case(session: Session, case_id: int) -> Case:
    """The case, read to be acted on: its row locked (PostgreSQL) so that its holder cannot
    change between the permission check and the action (SQLite transactions already hold the
    write lock from BEGIN)."""
    case = session.execute(
        select(Case)
        .where(Case.id == case_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if case is None:
        raise NotFound(f"no case {case_id}")
    return case


def _holder_handle(session: Session, case: Case) -> str:
    holder = session.get(Agent, case.claimed_by) if case.claimed_by is not None else None
    return holder.handle if holder is not None else "someone else"


def holds(agent: Agent, case: Case) -> bool:
    """Whether agent holds case: claimed it, and still has it or answered it (a case their
    reply answered stays theirs to close)."""
    return case.claimed_by == agent.id and case.status in HELD_STATUSES


def may_work(
    *, session: Session, agent: Agent, case: Case, what: str, closed_ok: bool = False
) -> None:
    """Whether agent may do what on case: Conflict when the case is closed (unless closed_ok
    and the agent is a lead or admin) or, for an agent, not held by them."""
    override = allows(agent.role, Permission.CASE_OVERRIDE)
    if case.status not in OPEN_STATUSES:
        if closed_ok and override:
            return
        who = "only a lead may" if closed_ok else "nobody may"
        raise Conflict(f"case {case.id} is already {case.status}: {who} {what} it")
    if override or holds(agent, case):
        return
    if case.claimed_by is not None and case.status in HELD_STATUSES:
        who = _holder_handle(session, case)
        raise Conflict(f"case {case.id} is held by {who}: only they or a lead may {what} it")
    raise Conflict(f"claim case {case.id} first: an agent may {what} only the cases they hold")


def _text(value: str, *, what: str, limit: int) -> str:
    value = (value or "").strip()
    if not value:
        raise ValueError(f"{what} needs text")
    if len(value) > limit:
        raise ValueError(f"{what} is {len(value)} characters; at most {limit}")
    return value


def claim(*, session: Session, agent: Agent, case_id: int, lease_seconds: float) -> Case:
    """Claim a queued case (Conflict when someone else got it first)."""
    require(agent, Permission.CASE_WORK)
    return work.claim(session=session, case_id=case_id, agent=agent, lease_seconds=lease_seconds)


def claim_next(
    *, session: Session, agent: Agent, team: str | None, lease_seconds: float
) -> Case | None:
    """Claim the top queued case of a team, else of the agent's teams (all if they have none),
    in a language the agent reads (work.claim_next); None when nothing waits. Conflict, saying
    which languages wait, when only cases in languages the agent did not declare wait: nobody
    is handed a case they cannot read, and a lead may still claim any case by its id."""
    require(agent, Permission.CASE_WORK)
    team_id = None
    if team:
        found = session.execute(select(Team.id).where(Team.name == team)).scalar_one_or_none()
        if found is None:
            raise NotFound(f"no team {team!r}")
        team_id = found
    case = work.claim_next(
        session=session, agent=agent, team_id=team_id, lease_seconds=lease_seconds
    )
    if case is None:
        unread = work.waiting_unread(session=session, agent=agent, team_id=team_id)
        if unread:
            raise Conflict(unread_message(work.agent_reads(agent), unread))
    return case


def unread_message(reads: list[str], unread: dict[str, int]) -> str:
    """What an agent is told when only cases in languages they do not read wait."""
    waiting = ", ".join(f"{n} in {code}" for code, n in unread.items())
    total = sum(unread.values())
    cases = "case waits" if total == 1 else "cases wait"
    return (
        f"no case in a language you read ({', '.join(reads)}) is waiting; "
        f"{total} {cases} in other languages ({waiting}): "
        "a lead may claim them by id, or add the language to yours"
    )


def release(*, session: Session, agent: Agent, case_id: int) -> Case:
    """Give a claimed case back to the queue: its holder, or a lead."""
    require(agent, Permission.CASE_WORK)
    case = _locked_case(session, case_id)
    if case.status != "claimed":
        raise Conflict(f"case {case_id} is {case.status}, not claimed")
    if case.claimed_by != agent.id:
        require(agent, Permission.CASE_OVERRIDE)
    changed = changed_rows(
        session.execute(
            update(Case)
            .where(Case.id == case_id, Case.status == "claimed", Case.claimed_by == case.claimed_by)
            .values(status="queued", claimed_by=None, claim_expires_at=None)
            .execution_options(synchronize_session=False)
        )
    )
    if not changed:
        raise Conflict(f"case {case_id} changed meanwhile")
    record(session, actor=actor_label(agent), kind="released", case_id=case_id)
    session.refresh(case)
    return case


def heartbeat(
    *,
    session: Session,
    agent: Agent,
    case_id: int,
    active: bool,
    now: datetime,
    idle_seconds: float,
) -> Case:
    """A browser has the case open: mark the agent as viewing it and, when the agent is active
    and holds the case, extend the claim lease by idle_seconds (an idle agent's claim runs out
    and the case returns to the queue)."""
    require(agent, Permission.QUEUE_READ)
    case = work.get_case(session=session, case_id=case_id)
    ins = insert_for(session)(CaseView).values(case_id=case_id, agent_id=agent.id, seen_at=now)
    session.execute(
        ins.on_conflict_do_update(index_elements=["case_id", "agent_id"], set_={"seen_at": now})
    )
    if active and case.status == "claimed" and case.claimed_by == agent.id:
        expires = now + timedelta(seconds=idle_seconds)
        if case.claim_expires_at is None or case.claim_expires_at < expires:
            session.execute(
                update(Case)
                .where(Case.id == case_id, Case.status == "claimed", Case.claimed_by == agent.id)
                .values(claim_expires_at=expires)
                .execution_options(synchronize_session=False)
            )
            session.refresh(case)
    return case


def leave(*, session: Session, agent: Agent, case_id: int) -> None:
    """The agent closed the case's page."""
    session.execute(
        delete(CaseView).where(CaseView.case_id == case_id, CaseView.agent_id == agent.id)
    )


def viewers(*, session: Session, case_ids: list[int], now: datetime) -> dict[int, list[str]]:
    """Who has each case open right now (handles)."""
    if not case_ids:
        return {}
    # Every fresh view (one per open browser tab, few), kept for the cases asked about: cheaper
    # than sending the queue's 200 ids to the database.
    wanted = set(case_ids)
    rows = session.execute(
        select(CaseView.case_id, Agent.handle)
        .join(Agent, Agent.id == CaseView.agent_id)
        .where(CaseView.seen_at > now - VIEW_FRESH)
        .order_by(Agent.handle)
    ).all()
    out: dict[int, list[str]] = {}
    for case_id, handle in rows:
        if case_id in wanted:
            out.setdefault(case_id, []).append(handle)
    return out


def reply(*, session: Session, agent: Agent, case_id: int, text: str) -> Reply:
    """Queue a public reply on a case the agent holds (the caller enqueues its send)."""
    require(agent, Permission.CASE_WORK)
    case = _locked_case(session, case_id)
    if case.status not in OPEN_STATUSES:
        raise Conflict(f"case {case_id} is already {case.status}: it takes no reply")
    if case.status == "claimed" and case.claimed_by != agent.id:
        who = _holder_handle(session, case)
        raise Conflict(f"case {case_id} is held by {who}: take it over before replying")
    return outbox.create_reply(session=session, case_id=case_id, agent=agent, text=text)


def retry_reply(*, session: Session, agent: Agent, reply_id: int) -> Reply:
    """Send a failed reply again, once (the caller enqueues its send)."""
    require(agent, Permission.CASE_WORK)
    row = session.get(Reply, reply_id)
    if row is None:
        raise NotFound(f"no reply {reply_id}")
    case = _locked_case(session, row.case_id)
    # On an open case nobody has claimed (its author's claim may have run out meanwhile) anyone
    # who works cases may send a failed reply again; otherwise its holder or a lead.
    if case.status not in OPEN_STATUSES or case.status == "claimed":
        may_work(session=session, agent=agent, case=case, what="retry a reply on")
    return outbox.retry_reply(session=session, reply_id=reply_id, agent=agent)


def add_note(*, session: Session, agent: Agent, case_id: int, text: str) -> None:
    """An internal note on the case (never public)."""
    require(agent, Permission.CASE_WORK)
    case = _locked_case(session, case_id)
    may_work(session=session, agent=agent, case=case, what="note", closed_ok=True)
    body = _text(text, what="a note", limit=NOTE_LIMIT)
    record(session, actor=actor_label(agent), kind="note", case_id=case_id, text=body)


def escalate(
    *,
    session: Session,
    agent: Agent,
    case_id: int,
    reason: str,
    team: str | None = None,
    to_lead: bool = False,
) -> Case:
    """Send the case to another team's queue, or ask a lead to take it, with a reason."""
    require(agent, Permission.CASE_WORK)
    why = _text(reason, what="an escalation", limit=REASON_LIMIT)
    case = _locked_case(session, case_id)
    may_work(session=session, agent=agent, case=case, what="escalate")
    if to_lead:
        case.needs_lead = True
        record(
            session, actor=actor_label(agent), kind="lead_requested", case_id=case_id, reason=why
        )
        session.flush()
        return case
    if not team:
        raise ValueError("escalate to a team (by name) or to a lead")
    # The routing rules may name teams not made yet; a person must pick one that exists.
    if session.execute(select(Team.id).where(Team.name == team)).first() is None:
        raise NotFound(f"no team {team!r}")
    return work.escalate(session=session, case_id=case_id, agent=agent, team=team, reason=why)


def close(*, session: Session, agent: Agent, case_id: int, status: str, reason: str) -> Case:
    """Resolve or dismiss a case, with a reason."""
    require(agent, Permission.CASE_WORK)
    why = _text(reason, what="a reason", limit=REASON_LIMIT)
    may_work(session=session, agent=agent, case=_locked_case(session, case_id), what="close")
    case = work.close(session=session, case_id=case_id, agent=agent, status=status, reason=why)
    case.needs_lead = False
    return case


@dataclass(frozen=True)
class CannedView:
    id: int
    name: str
    text: str
    team: str | None


def canned_replies(*, session: Session, team_id: int | None) -> list[CannedView]:
    """Canned replies for a case of this team: the team's own and everyone's."""
    stmt = select(CannedReply, Team.name).outerjoin(Team, Team.id == CannedReply.team_id)
    if team_id is not None:
        stmt = stmt.where((CannedReply.team_id == team_id) | CannedReply.team_id.is_(None))
    rows = session.execute(stmt.order_by(CannedReply.name)).all()
    return [CannedView(c.id, c.name, c.text, name) for c, name in rows]


def fill_canned(text: str, *, handle: str, agent: Agent) -> str:
    """A canned reply with its variables filled in; unknown {names} are left as typed."""
    values = {"handle": handle, "agent": agent.handle, "agent_name": agent.display_name}
    out = text
    for name, value in values.items():
        out = out.replace("{" + name + "}", value)
    return out


def save_canned(
    *, session: Session, agent: Agent, name: str, text: str, team: str | None
) -> CannedReply:
    """Create or update a canned reply (leads and admins)."""
    require(agent, Permission.CANNED_MANAGE)
    name = _text(name, what="a canned reply's name", limit=128)
    body = _text(text, what="a canned reply", limit=outbox.DEFAULT_LIMIT)
    public_text.check(body, what="a canned reply")
    team_id = None
    if team:
        team_id = session.execute(select(Team.id).where(Team.name == team)).scalar_one_or_none()
        if team_id is None:
            raise NotFound(f"no team {team!r}")
    row = session.execute(select(CannedReply).where(CannedReply.name == name)).scalar_one_or_none()
    if row is None:
        row = CannedReply(name=name, text=body, team_id=team_id, created_by=agent.handle)
        session.add(row)
    else:
        row.text, row.team_id = body, team_id
    session.flush()
    record(session, actor=actor_label(agent), kind="canned_saved", name=name)
    return row


def delete_canned(*, session: Session, agent: Agent, canned_id: int) -> None:
    require(agent, Permission.CANNED_MANAGE)
    row = session.get(CannedReply, canned_id)
    if row is None:
        raise NotFound(f"no canned reply {canned_id}")
    session.delete(row)
    record(session, actor=actor_label(agent), kind="canned_deleted", name=row.name)
