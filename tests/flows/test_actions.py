"""What people do with cases, through socialcare.cases.actions on both databases: claims and
their leases, escalation, notes, canned replies, closing, retries, and who may do what."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from socialcare.cases import actions
from socialcare.cases.models import Case, Event, Reply
from socialcare.cases.work import release_expired_claims
from socialcare.db import utcnow
from socialcare.errors import Conflict, Forbidden, NotFound
from socialcare.people.models import Agent, Team
from tests.factories import (
    T0,
    make_account,
    make_agent,
    make_case,
    make_post,
    make_reply,
    make_team,
)

LEASE = 60.0


@dataclass
class Floor:
    ann: Agent  # agent, support
    bob: Agent  # agent, support
    lee: Agent  # lead
    support: Team
    billing: Team
    cases: dict[str, Case]


@pytest.fixture
def floor(session: Session) -> Floor:
    account = make_account(session)
    support, billing = make_team(session, "support"), make_team(session, "billing")
    ann = make_agent(session, "ann", role="agent", display_name="Ann Smith")
    bob = make_agent(session, "bob", role="agent")
    lee = make_agent(session, "lee", role="lead")
    ann.teams, bob.teams = [support], [support]

    def case(name: str, minutes: int, priority: str, team: Team) -> Case:
        post = make_post(
            session, account, name, created_at=T0 + timedelta(minutes=minutes), author_handle=name
        )
        return make_case(session, account, post, priority=priority, team=team)

    cases = {
        "p2_old": case("p2_old", 0, "P2", support),
        "p1_new": case("p1_new", 20, "P1", support),
        "p1_old": case("p1_old", 10, "P1", support),
        "billing": case("billing", 5, "P1", billing),
    }
    session.commit()
    return Floor(ann, bob, lee, support, billing, cases)


def events(session: Session, kind: str, case: Case) -> list[Event]:
    stmt = select(Event).where(Event.kind == kind, Event.case_id == case.id)
    return list(session.scalars(stmt))


def test_a_claim_takes_a_lease_and_nobody_else_can_claim_the_case(
    session: Session, floor: Floor
) -> None:
    case = floor.cases["p2_old"]
    before = utcnow()
    claimed = actions.claim(session=session, agent=floor.ann, case_id=case.id, lease_seconds=LEASE)
    assert claimed.status == "claimed" and claimed.claimed_by == floor.ann.id
    assert claimed.claim_expires_at is not None
    assert before + timedelta(seconds=LEASE) <= claimed.claim_expires_at
    assert claimed.claim_expires_at <= utcnow() + timedelta(seconds=LEASE)
    again = actions.claim(session=session, agent=floor.ann, case_id=case.id, lease_seconds=LEASE)
    assert again.id == case.id  # claiming what one holds is no error
    for other in (floor.bob, floor.lee):
        with pytest.raises(Conflict):
            actions.claim(session=session, agent=other, case_id=case.id, lease_seconds=LEASE)
    assert len(events(session, "claimed", case)) == 1
    with pytest.raises(NotFound):
        actions.claim(session=session, agent=floor.ann, case_id=10**9, lease_seconds=LEASE)


def test_next_case_claims_the_most_urgent_then_longest_waiting_of_ones_teams(
    session: Session, floor: Floor
) -> None:
    order = []
    while c := actions.claim_next(session=session, agent=floor.ann, team=None, lease_seconds=1):
        order.append(c.customer_handle)
    assert order == ["p1_old", "p1_new", "p2_old"]  # billing's case is not ann's team's
    taken = actions.claim_next(session=session, agent=floor.bob, team="billing", lease_seconds=1)
    assert taken is not None and taken.customer_handle == "billing"
    assert actions.claim_next(session=session, agent=floor.bob, team=None, lease_seconds=1) is None
    with pytest.raises(NotFound):
        actions.claim_next(session=session, agent=floor.bob, team="nowhere", lease_seconds=1)


def test_a_holder_or_a_lead_releases_a_claim_but_another_agent_cannot(
    session: Session, floor: Floor
) -> None:
    case = floor.cases["p1_old"]
    actions.claim(session=session, agent=floor.ann, case_id=case.id, lease_seconds=LEASE)
    with pytest.raises(Forbidden):
        actions.release(session=session, agent=floor.bob, case_id=case.id)
    released = actions.release(session=session, agent=floor.lee, case_id=case.id)
    assert released.status == "queued" and released.claimed_by is None
    with pytest.raises(Conflict):
        actions.release(session=session, agent=floor.ann, case_id=case.id)
    actions.claim(session=session, agent=floor.bob, case_id=case.id, lease_seconds=LEASE)
    assert actions.release(session=session, agent=floor.bob, case_id=case.id).status == "queued"
    assert len(events(session, "released", case)) == 2


def test_heartbeats_of_an_active_holder_extend_the_lease_and_an_idle_claim_expires(
    session: Session, floor: Floor
) -> None:
    case = floor.cases["p1_old"]
    actions.claim(session=session, agent=floor.ann, case_id=case.id, lease_seconds=LEASE)
    now = utcnow()
    held = actions.heartbeat(
        session=session, agent=floor.ann, case_id=case.id, active=True, now=now, idle_seconds=300
    )
    assert held.claim_expires_at == now + timedelta(seconds=300)
    later = now + timedelta(seconds=120)
    for agent, active in ((floor.ann, False), (floor.bob, True)):  # idle, or not the holder
        held = actions.heartbeat(
            session=session,
            agent=agent,
            case_id=case.id,
            active=active,
            now=later,
            idle_seconds=300,
        )
        assert held.claim_expires_at == now + timedelta(seconds=300)
    assert actions.viewers(session=session, case_ids=[case.id], now=later) == {
        case.id: ["ann", "bob"]
    }
    assert release_expired_claims(session=session, now=now + timedelta(seconds=299)) == 0
    assert release_expired_claims(session=session, now=now + timedelta(seconds=301)) == 1
    session.refresh(case)
    assert case.status == "queued" and case.claimed_by is None
    assert len(events(session, "claim_expired", case)) == 1
    mine = actions.claim(session=session, agent=floor.bob, case_id=case.id, lease_seconds=LEASE)
    assert mine.claimed_by == floor.bob.id
    gone = later + actions.VIEW_FRESH + timedelta(seconds=1)
    assert actions.viewers(session=session, case_ids=[case.id], now=gone) == {}


def test_escalating_to_a_team_requeues_one_priority_higher_with_the_reason(
    session: Session, floor: Floor
) -> None:
    case = floor.cases["p2_old"]
    actions.claim(session=session, agent=floor.ann, case_id=case.id, lease_seconds=LEASE)
    with pytest.raises(Conflict):  # another agent's case
        actions.escalate(
            session=session, agent=floor.bob, case_id=case.id, reason="x", team="billing"
        )
    with pytest.raises(ValueError):
        actions.escalate(session=session, agent=floor.ann, case_id=case.id, reason=" ", team="b")
    with pytest.raises(ValueError):
        actions.escalate(session=session, agent=floor.ann, case_id=case.id, reason="why")
    with pytest.raises(NotFound):  # a typo does not make a new team
        actions.escalate(
            session=session, agent=floor.ann, case_id=case.id, reason="why", team="biling"
        )
    assert session.scalar(select(func.count()).select_from(Team)) == 2
    moved = actions.escalate(
        session=session, agent=floor.ann, case_id=case.id, reason=" refund > 500 ", team="billing"
    )
    assert (moved.team_id, moved.priority, moved.status) == (floor.billing.id, "P1", "queued")
    assert moved.escalated and moved.claimed_by is None
    [event] = events(session, "escalated", case)
    assert event.data["reason"] == "refund > 500" and event.data["team"] == "billing"


def test_asking_for_a_lead_flags_the_case_and_a_lead_may_do_it_for_a_case_ann_holds(
    session: Session, floor: Floor
) -> None:
    case = floor.cases["p1_old"]
    actions.claim(session=session, agent=floor.ann, case_id=case.id, lease_seconds=LEASE)
    with pytest.raises(Conflict, match="held by ann"):  # ann's case, not bob's to flag
        actions.escalate(
            session=session, agent=floor.bob, case_id=case.id, reason="x", to_lead=True
        )
    flagged = actions.escalate(
        session=session, agent=floor.lee, case_id=case.id, reason="angry VIP", to_lead=True
    )
    assert flagged.needs_lead and flagged.status == "claimed" and flagged.claimed_by == floor.ann.id
    assert events(session, "lead_requested", case)[0].data["reason"] == "angry VIP"
    closed = actions.close(
        session=session, agent=floor.ann, case_id=case.id, status="resolved", reason="sorted"
    )
    assert not closed.needs_lead


def test_notes_are_kept_as_events_and_must_have_text(session: Session, floor: Floor) -> None:
    case = floor.cases["p1_old"]
    actions.claim(session=session, agent=floor.ann, case_id=case.id, lease_seconds=LEASE)
    actions.add_note(session=session, agent=floor.ann, case_id=case.id, text="  rang them  ")
    assert [e.data["text"] for e in events(session, "note", case)] == ["rang them"]
    for bad in ("", "   ", "x" * (actions.NOTE_LIMIT + 1)):
        with pytest.raises(ValueError):
            actions.add_note(session=session, agent=floor.ann, case_id=case.id, text=bad)
    with pytest.raises(NotFound):
        actions.add_note(session=session, agent=floor.ann, case_id=10**9, text="x")


def test_canned_replies_fill_their_variables_and_only_leads_manage_them(
    session: Session, floor: Floor
) -> None:
    text = "Hi @{handle}, {agent_name} ({agent}) here. {unknown} stays."
    with pytest.raises(Forbidden):
        actions.save_canned(session=session, agent=floor.ann, name="hi", text=text, team=None)
    actions.save_canned(session=session, agent=floor.lee, name="hi", text=text, team=None)
    actions.save_canned(session=session, agent=floor.lee, name="refund", text="R", team="billing")
    mine = actions.canned_replies(session=session, team_id=floor.support.id)
    assert [(c.name, c.team) for c in mine] == [("hi", None)]
    theirs = actions.canned_replies(session=session, team_id=floor.billing.id)
    assert [(c.name, c.team) for c in theirs] == [("hi", None), ("refund", "billing")]
    filled = actions.fill_canned(mine[0].text, handle="p1_old", agent=floor.ann)
    assert filled == "Hi @p1_old, Ann Smith (ann) here. {unknown} stays."
    updated = actions.save_canned(session=session, agent=floor.lee, name="hi", text="Yo", team=None)
    assert updated.id == mine[0].id and updated.text == "Yo"
    with pytest.raises(NotFound):
        actions.save_canned(session=session, agent=floor.lee, name="x", text="y", team="nowhere")
    with pytest.raises(Forbidden):
        actions.delete_canned(session=session, agent=floor.bob, canned_id=updated.id)
    actions.delete_canned(session=session, agent=floor.lee, canned_id=updated.id)
    assert [c.name for c in actions.canned_replies(session=session, team_id=None)] == ["refund"]


@pytest.mark.parametrize("status", ["resolved", "dismissed"])
def test_closing_needs_a_reason_and_the_holder_or_a_lead(
    session: Session, floor: Floor, status: str
) -> None:
    case = floor.cases["p1_old"]
    actions.claim(session=session, agent=floor.ann, case_id=case.id, lease_seconds=LEASE)
    with pytest.raises(ValueError):
        actions.close(session=session, agent=floor.ann, case_id=case.id, status=status, reason="")
    with pytest.raises(Conflict):
        actions.close(session=session, agent=floor.bob, case_id=case.id, status=status, reason="x")
    closed = actions.close(
        session=session, agent=floor.lee, case_id=case.id, status=status, reason="dup of #4"
    )
    assert closed.status == status and closed.close_reason == "dup of #4" and closed.closed_at
    with pytest.raises(Conflict):
        actions.close(session=session, agent=floor.lee, case_id=case.id, status=status, reason="x")
    assert events(session, status, case)[0].data["reason"] == "dup of #4"


def test_a_failed_reply_is_retried_once_and_a_sent_queued_or_sending_one_never(
    session: Session, floor: Floor
) -> None:
    case = floor.cases["p1_old"]
    replies = {
        state: make_reply(session, case, state=state, attempts=3, last_error="boom")
        for state in ("failed", "sent", "queued", "sending")
    }
    for state in ("sent", "queued", "sending"):
        with pytest.raises(Conflict):
            actions.retry_reply(session=session, agent=floor.ann, reply_id=replies[state].id)
        assert session.get_one(Reply, replies[state].id).state == state
    actions.claim(session=session, agent=floor.bob, case_id=case.id, lease_seconds=LEASE)
    with pytest.raises(Conflict, match="held by bob"):  # bob holds the case
        actions.retry_reply(session=session, agent=floor.ann, reply_id=replies["failed"].id)
    again = actions.retry_reply(session=session, agent=floor.lee, reply_id=replies["failed"].id)
    assert (again.state, again.attempts) == ("queued", 0)
    with pytest.raises(Conflict):  # once: it is queued now
        actions.retry_reply(session=session, agent=floor.lee, reply_id=replies["failed"].id)
    with pytest.raises(NotFound):
        actions.retry_reply(session=session, agent=floor.lee, reply_id=10**9)


def test_only_the_holder_replies_so_a_lead_takes_the_case_over_first(
    session: Session, floor: Floor
) -> None:
    case = floor.cases["p1_old"]
    with pytest.raises(Conflict):
        actions.reply(session=session, agent=floor.ann, case_id=case.id, text="hi")
    actions.claim(session=session, agent=floor.ann, case_id=case.id, lease_seconds=LEASE)
    for other in (floor.bob, floor.lee):
        with pytest.raises(Conflict):
            actions.reply(session=session, agent=other, case_id=case.id, text="hi")
    with pytest.raises(ValueError):
        actions.reply(session=session, agent=floor.ann, case_id=case.id, text="x" * 281)
    sent = actions.reply(session=session, agent=floor.ann, case_id=case.id, text=" Sorry! ")
    assert (sent.state, sent.text, sent.agent_id) == ("queued", "Sorry!", floor.ann.id)
    actions.release(session=session, agent=floor.lee, case_id=case.id)
    actions.claim(session=session, agent=floor.lee, case_id=case.id, lease_seconds=LEASE)
    assert actions.reply(session=session, agent=floor.lee, case_id=case.id, text="Me").state


def test_the_queue_menus_list_each_value_open_cases_have_once_and_no_closed_ones(
    session: Session, floor: Floor
) -> None:
    from socialcare.web.queries import distinct_values

    topics = {"p2_old": "refund", "p1_new": "delivery", "p1_old": "delivery", "billing": None}
    for name, topic in topics.items():
        floor.cases[name].topic = topic
    floor.cases["billing"].platform = "bluesky"
    closed = floor.cases["p2_old"]
    actions.close(
        session=session, agent=floor.lee, case_id=closed.id, status="resolved", reason="x"
    )
    session.flush()
    assert distinct_values(session, Case.topic) == ["delivery"]  # refund's case is closed
    assert distinct_values(session, Case.platform) == ["bluesky", "x"]
    for case in floor.cases.values():
        case.status = "dismissed"
    session.flush()
    assert distinct_values(session, Case.topic) == []


def test_an_agent_works_only_the_cases_they_hold_and_a_lead_any_open_one(
    session: Session, floor: Floor
) -> None:
    billing = floor.cases["billing"]  # queued, another team's, held by nobody
    held = floor.cases["p1_old"]
    actions.claim(session=session, agent=floor.bob, case_id=held.id, lease_seconds=LEASE)
    work = {
        "resolve": lambda who, c: actions.close(
            session=session, agent=who, case_id=c.id, status="resolved", reason="x"
        ),
        "dismiss": lambda who, c: actions.close(
            session=session, agent=who, case_id=c.id, status="dismissed", reason="x"
        ),
        "escalate": lambda who, c: actions.escalate(
            session=session, agent=who, case_id=c.id, reason="x", team="support"
        ),
        "note": lambda who, c: actions.add_note(session=session, agent=who, case_id=c.id, text="x"),
    }
    for name, act in work.items():
        for case, why in ((billing, "claim case"), (held, "held by bob")):
            with pytest.raises(Conflict, match=why):
                act(floor.ann, case)
            session.refresh(case)
            assert case.status in ("queued", "claimed"), name
    assert events(session, "note", billing) == events(session, "note", held) == []
    actions.add_note(session=session, agent=floor.lee, case_id=held.id, text="taking a look")
    actions.close(
        session=session, agent=floor.lee, case_id=billing.id, status="dismissed", reason="spam"
    )
    with pytest.raises(Conflict, match="only a lead"):  # closed: no agent's note
        actions.add_note(session=session, agent=floor.ann, case_id=billing.id, text="x")
    actions.add_note(session=session, agent=floor.lee, case_id=billing.id, text="was spam")
    with pytest.raises(Conflict, match="nobody"):
        actions.escalate(
            session=session, agent=floor.lee, case_id=billing.id, reason="x", team="support"
        )
    assert [e.data["text"] for e in events(session, "note", billing)] == ["was spam"]
