"""One answer to a whole surge: previewed per customer within the platform's length, queued
once per case however often or concurrently it is sent, later cases answered as the lead chose,
and the incident's cases closed with it."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from socialcare.cases import lengths
from socialcare.cases.models import Case, Event, Reply
from socialcare.db import session_scope
from socialcare.errors import Conflict, Forbidden
from socialcare.people.models import Agent
from socialcare.surge import answer, answer_text, incidents
from socialcare.surge.models import Surge, SurgeEvent
from tests.factories import make_agent, make_case, make_post
from tests.surge.world import OUTAGE, T0, join_surge, surge_world

NOW = T0 + timedelta(hours=1)
TEMPLATE = 'Hi @{handle}, sorry about "{quote}": logins fail for everyone, a fix is on its way.'
HANDLES = ["ann", "bob", "cem", "dee", "eve", "fay", "gus"]


def replies(session):
    session.expire_all()
    return list(session.execute(select(Reply).order_by(Reply.case_id)).scalars())


def test_the_preview_fills_each_customers_handle_and_quote_within_the_length(session, settings):
    world = surge_world(session, settings, HANDLES)
    lead = make_agent(session, "lena", role="lead")
    plan = answer.preview(session=session, agent=lead, surge_id=world.surge.id, text=TEMPLATE)
    assert plan.to_answer == len(HANDLES) and plan.answered_before == 0
    assert [p.handle for p in plan.previews] == HANDLES[: answer.PREVIEW_COUNT]
    first = plan.previews[0]
    # The quote is the customer's own words without the leading mention of the brand.
    assert first.text.startswith('Hi @ann, sorry about "the app will not let me log in')
    assert "@acmecare" not in first.text
    assert all(p.length == lengths.length("x", p.text) <= p.limit == 280 for p in plan.previews)


def test_a_long_quote_is_cut_to_fit_the_platform(session, settings):
    world = surge_world(session, settings, ["ann"])
    lead = make_agent(session, "lena", role="lead")
    filler = "x" * 240
    plan = answer.preview(
        session=session, agent=lead, surge_id=world.surge.id, text=f"@{{handle}} {filler} {{quote}}"
    )
    text = plan.previews[0].text
    assert lengths.length("x", text) <= 280
    assert text.endswith(answer_text.ELLIPSIS) and "the app" in text


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("@{handle} " + "y" * 275, "as x counts them"),
        ("@{handle} sorry \u202eevil", "bidirectional control"),
        ("@{handle} sorry \x1b[31m", "control character"),
        ("@{handle} thanks, {agent}", "{agent}"),
        ("   ", "needs text"),
    ],
)
def test_a_template_that_does_not_fit_or_may_not_be_posted_is_refused_and_queues_nothing(
    session, settings, template, why
):
    world = surge_world(session, settings, ["ann", "a_much_longer_handle"])
    lead = make_agent(session, "lena", role="lead")
    with pytest.raises(ValueError, match=None if why.startswith("{") else why) as refused:
        answer.send(
            session=session,
            agent=lead,
            surge_id=world.surge.id,
            text=template,
            after_send="wait",
            now=NOW,
        )
    assert why in str(refused.value)
    session.rollback()
    assert replies(session) == []


def test_the_length_refusal_names_the_customer_it_does_not_fit(session, settings):
    world = surge_world(session, settings, ["ann", "a_much_longer_handle"])
    lead = make_agent(session, "lena", role="lead")
    fits_ann = "@{handle} " + "z" * (280 - len("@ann "))
    with pytest.raises(ValueError, match="for @a_much_longer_handle"):
        answer.preview(session=session, agent=lead, surge_id=world.surge.id, text=fits_ann)


def test_an_agent_may_not_send_or_resolve(session, settings):
    world = surge_world(session, settings, ["ann"])
    agent = make_agent(session, "al", role="agent")
    with pytest.raises(Forbidden):
        answer.send(
            session=session,
            agent=agent,
            surge_id=world.surge.id,
            text=TEMPLATE,
            after_send="wait",
            now=NOW,
        )
    with pytest.raises(Forbidden):
        answer.resolve(session=session, agent=agent, surge_id=world.surge.id, now=NOW)


def test_two_leads_sending_at_once_queue_exactly_one_reply_per_case(session, settings):
    world = surge_world(session, settings, HANDLES)
    leads = [make_agent(session, f"lead{i}", role="lead").id for i in range(2)]
    session.commit()
    barrier = threading.Barrier(2)
    results, errors = [], []

    def send(lead_id):
        try:
            barrier.wait(timeout=10)
            with session_scope(settings) as s:
                lead = s.get_one(Agent, lead_id)
                result = answer.send(
                    session=s,
                    agent=lead,
                    surge_id=world.surge.id,
                    text=TEMPLATE,
                    after_send="wait",
                    now=NOW,
                )
                results.append(len(result.reply_ids))
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in leads]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sorted(results) == [0, len(HANDLES)]
    rows = replies(session)
    assert [r.case_id for r in rows] == [c.id for c in world.cases]
    assert {r.state for r in rows} == {"queued"} and {r.kind for r in rows} == {"answer"}
    assert rows[0].text.startswith("Hi @ann,")
    surge = session.get(Surge, world.surge.id)
    assert surge.status == "answered" and surge.answered_at == NOW
    per_case = session.execute(
        select(Event.case_id, func.count())
        .where(Event.kind == "reply_queued")
        .group_by(Event.case_id)
    ).all()
    assert sorted(per_case) == sorted((c.id, 1) for c in world.cases)
    kinds = (
        session.execute(select(SurgeEvent.kind).where(SurgeEvent.surge_id == surge.id))
        .scalars()
        .all()
    )
    assert kinds.count("case_answered") == len(HANDLES) and kinds.count("answered") == 1


def test_the_same_form_sent_twice_queues_nothing_more_and_skips_answered_cases(session, settings):
    world = surge_world(session, settings, ["ann", "bob", "cem"])
    world.cases[2].status = "responded"  # an agent answered cem before the surge was known
    lead = make_agent(session, "lena", role="lead")
    session.commit()
    first = answer.send(
        session=session,
        agent=lead,
        surge_id=world.surge.id,
        text=TEMPLATE,
        after_send="wait",
        now=NOW,
    )
    session.commit()
    again = answer.send(
        session=session,
        agent=lead,
        surge_id=world.surge.id,
        text=TEMPLATE,
        after_send="wait",
        now=NOW,
    )
    session.commit()
    assert (len(first.reply_ids), first.skipped) == (2, 1)
    assert (len(again.reply_ids), again.answered_before, again.skipped) == (0, 2, 1)
    assert len(replies(session)) == 2


def test_same_answer_reaches_a_case_linked_after_the_send_and_wait_leaves_it(session, settings):
    world = surge_world(session, settings, ["ann", "bob"])
    lead = make_agent(session, "lena", role="lead")
    answer.send(
        session=session,
        agent=lead,
        surge_id=world.surge.id,
        text=TEMPLATE,
        after_send="wait",
        now=NOW,
    )
    session.commit()
    waiting = join_surge(session, world, "late1")
    assert [r.case_id for r in replies(session)] == [c.id for c in world.cases]  # no reply
    answer.send(
        session=session,
        agent=lead,
        surge_id=world.surge.id,
        text=TEMPLATE,
        after_send="same",
        now=NOW,
    )
    session.commit()
    assert replies(session)[-1].case_id == waiting.id  # the lead's second send reached it
    later = join_surge(session, world, "late2")
    rows = replies(session)
    assert [r.case_id for r in rows] == [*(c.id for c in world.cases), waiting.id, later.id]
    assert rows[-1].text.startswith("Hi @late2,") and rows[-1].agent_id == lead.id
    join_surge_again = join_surge(session, world, "late3")
    assert sum(1 for r in replies(session) if r.case_id == join_surge_again.id) == 1


def test_resolving_closes_the_open_cases_and_keeps_the_answered_ones_history(session, settings):
    world = surge_world(session, settings, ["ann", "bob", "cem"])
    lead = make_agent(session, "lena", role="lead")
    world.cases[2].status = "dismissed"
    answer.send(
        session=session,
        agent=lead,
        surge_id=world.surge.id,
        text=TEMPLATE,
        after_send="same",
        now=NOW,
    )
    session.commit()
    closed = answer.resolve(session=session, agent=lead, surge_id=world.surge.id, now=NOW)
    session.commit()
    assert [c.id for c in closed] == [c.id for c in world.cases[:2]]
    session.expire_all()
    cases = list(session.execute(select(Case).order_by(Case.id)).scalars())
    assert [(c.status, c.close_reason) for c in cases] == [
        ("resolved", "surge resolved"),
        ("resolved", "surge resolved"),
        ("dismissed", None),
    ]
    history = (
        session.execute(
            select(Event.kind).where(Event.case_id == world.cases[0].id).order_by(Event.id)
        )
        .scalars()
        .all()
    )
    assert history == ["reply_queued", "resolved"]
    assert len(replies(session)) == 2  # the queued answers still go out
    assert session.get(Surge, world.surge.id).status == "resolved"
    with pytest.raises(Conflict):
        answer.resolve(session=session, agent=lead, surge_id=world.surge.id, now=NOW)
    session.rollback()
    late = join_surge(session, world, "late")  # "same answer" stops with the incident
    assert all(r.case_id != late.id for r in replies(session))


def test_each_published_answer_is_the_customers_first_response(session, settings):
    from socialcare import flows
    from socialcare.flows import InlineRunner

    world = surge_world(session, settings, ["ann", "bob"], platform="twcs")  # the replay's
    lead = make_agent(session, "lena", role="lead")
    result = answer.send(
        session=session,
        agent=lead,
        surge_id=world.surge.id,
        text=TEMPLATE,
        after_send="wait",
        now=NOW,
    )
    session.commit()
    runner = InlineRunner(settings)
    for reply_id in result.reply_ids:
        assert flows.send_reply(reply_id, enqueue=runner, settings=settings) == "sent"
        assert flows.send_reply(reply_id, enqueue=runner, settings=settings) == "sent"  # once
    session.expire_all()
    cases = list(session.execute(select(Case).order_by(Case.id)).scalars())
    assert [(c.status, c.first_response_via) for c in cases] == [("responded", "socialcare")] * 2
    sent = session.execute(select(Reply.sent_at).order_by(Reply.case_id)).scalars().all()
    assert [c.first_response_at for c in cases] == sent


def test_a_post_routed_after_it_joined_the_surge_is_linked_and_answered_at_routing(
    session, settings
):
    world = surge_world(session, settings, ["ann"])
    lead = make_agent(session, "lena", role="lead")
    answer.send(
        session=session,
        agent=lead,
        surge_id=world.surge.id,
        text=TEMPLATE,
        after_send="same",
        now=NOW,
    )
    session.commit()
    post = make_post(session, world.account, OUTAGE, created_at=NOW, author_handle="late")
    incidents.add_posts(
        session=session,
        surge_id=world.surge.id,
        posts=[incidents.SurgePostRef(post.id, NOW, 0.9)],
        now=NOW,
    )
    session.commit()  # scored and in the surge, not routed yet: no case to link
    routed = make_case(session, world.account, post)
    new = incidents.link_routed(session=session, case_ids=[routed.id], now=NOW)
    session.commit()
    assert incidents.case_ids(session=session, surge_id=world.surge.id) == [
        world.cases[0].id,
        routed.id,
    ]
    (reply,) = [r for r in replies(session) if r.case_id == routed.id]
    assert new == [reply.id] and reply.text.startswith("Hi @late,")
    assert incidents.link_routed(session=session, case_ids=[routed.id], now=NOW) == []
