"""claim-next hands an agent only cases in a language they read (or of unknown language), and
says so when only cases in other languages wait: one rule for the service, the API, the page's
button and the CLI, on both databases."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from socialcare.cases import actions
from socialcare.cases.models import Case, Event
from socialcare.cli import app
from socialcare.config import Settings
from socialcare.db import session_scope
from socialcare.errors import Conflict
from socialcare.people.models import Agent, Team
from socialcare.posts.models import Post
from socialcare.web import create_app
from tests.factories import T0, make_account, make_agent, make_case, make_post, make_team
from tests.web.signin import sign_in

# (language of the first post, priority): the queue's order is P1 first, then the oldest.
WAITING = [
    ("ru", "P1"),
    ("und", "P2"),
    ("fa", "P3"),
    (None, "P3"),  # stored before languages were detected: unknown
    ("en", "P3"),
    ("fa", "P4"),
]
TEXTS = {
    "ru": "Мой интернет не работает",
    "fa": "سفارشم هنوز نرسیده",
    "en": "my parcel never came",
    "und": "👍",
    None: "stored before detection",
}


def _load(session: Session) -> tuple[Team, dict[tuple[str | None, str], int]]:
    acme = make_account(session, "acme")
    care = make_team(session, "care", languages=["en"])
    ids = {}
    for minutes, (code, priority) in enumerate(WAITING):
        root = make_post(session, acme, TEXTS[code], created_at=T0 + timedelta(minutes=minutes))
        root.language = code
        ids[(code, priority)] = make_case(session, acme, root, team=care, priority=priority).id
    return care, ids


def _agent(session: Session, handle: str, team: Team, languages: list[str], **kw: str) -> Agent:
    agent = make_agent(session, handle, role=kw.get("role", "agent"), languages=languages)
    agent.teams = [team]
    session.flush()
    return agent


def _next(session: Session, agent: Agent, team: str | None = None) -> Case | None:
    return actions.claim_next(session=session, agent=agent, team=team, lease_seconds=900)


def test_an_agent_gets_cases_they_read_or_of_unknown_language_then_is_told_what_waits(
    session: Session,
) -> None:
    care, ids = _load(session)
    parisa = _agent(session, "parisa", care, ["fa"])
    got = []
    for _ in range(4):
        case = _next(session, parisa)
        assert case is not None
        got.append(case.id)
    # Priority order, skipping the Russian P1 and the English case she cannot read.
    assert got == [ids[("und", "P2")], ids[("fa", "P3")], ids[(None, "P3")], ids[("fa", "P4")]]
    with pytest.raises(Conflict) as told:
        _next(session, parisa)
    assert str(told.value) == (
        "no case in a language you read (fa) is waiting; 2 cases wait in other languages "
        "(1 in en, 1 in ru): a lead may claim them by id, or add the language to yours"
    )
    # Nothing was claimed by the refusal: the Russian and English cases still wait.
    waiting = session.scalars(select(Case.id).where(Case.status == "queued")).all()
    assert sorted(waiting) == sorted([ids[("ru", "P1")], ids[("en", "P3")]])
    claims = session.scalars(select(Event.case_id).where(Event.kind == "claimed")).all()
    assert sorted(claims) == sorted(got)


def test_an_agent_who_declared_no_language_takes_any_case_and_a_lead_claims_by_id(
    session: Session,
) -> None:
    care, ids = _load(session)
    anyone = _agent(session, "sam", care, [])
    first = _next(session, anyone)
    assert first is not None and first.id == ids[("ru", "P1")]
    olga = _agent(session, "olga", care, ["ru"])
    lead = _agent(session, "lena", care, ["fa"], role="lead")
    # Olga reads Russian, but the Russian case is taken: she gets the unknown-language one.
    second = _next(session, olga)
    assert second is not None and second.id == ids[("und", "P2")]
    # The lead reads Persian only, yet may take the English case explicitly.
    english = actions.claim(
        session=session, agent=lead, case_id=ids[("en", "P3")], lease_seconds=900
    )
    assert (english.status, english.claimed_by) == ("claimed", lead.id)


def test_only_unknown_and_own_languages_count_and_an_empty_queue_is_none(
    session: Session,
) -> None:
    care = make_team(session, "care", languages=["en"])
    olga = _agent(session, "olga", care, ["ru"])
    assert _next(session, olga) is None  # nothing waits at all: no message, no claim
    acme = make_account(session, "acme")
    root = make_post(session, acme, TEXTS["fa"], created_at=T0)
    root.language = "fa"
    make_case(session, acme, root, team=care)
    with pytest.raises(Conflict, match=r"\(ru\) is waiting; 1 case waits in other languages"):
        _next(session, olga)
    other = make_team(session, "tehran", languages=["fa"])
    # Asking for another team's queue counts only that team's cases.
    assert _next(session, olga, team="tehran") is None
    assert other.id != care.id


@pytest.fixture
def client(settings: Settings, engine: object, session: Session) -> Iterator[TestClient]:
    care, _ = _load(session)
    _agent(session, "olga", care, ["ru"])
    session.commit()
    with TestClient(create_app(settings, clock=lambda: T0 + timedelta(hours=1))) as c:
        sign_in(c, session, "olga", "agent")
        yield c


def test_the_api_behind_the_page_button_uses_the_same_rule(client: TestClient) -> None:
    taken = []
    for _ in range(3):
        answer = client.post("/api/cases/next", json={})
        assert answer.status_code == 200, answer.text
        taken.append(answer.json()["id"])
    refused = client.post("/api/cases/next", json={})
    assert refused.status_code == 409
    assert refused.json()["detail"].startswith(
        "no case in a language you read (ru) is waiting; 3 cases wait in other languages "
        "(1 in en, 2 in fa)"
    )
    assert len(set(taken)) == 3


def test_the_cli_claims_by_language_and_says_why_it_stops(engine, settings) -> None:
    with session_scope(settings) as s:
        care, ids = _load(s)
        _agent(s, "parisa", care, ["fa"])
    runner = CliRunner()
    outs = [runner.invoke(app, ["claim-next", "--agent", "parisa"]) for _ in range(5)]
    assert [r.exit_code for r in outs] == [0, 0, 0, 0, 1]
    claimed = [int(r.output.split("#", 1)[1].split(" ", 1)[0]) for r in outs[:4]]
    assert claimed == [ids[("und", "P2")], ids[("fa", "P3")], ids[(None, "P3")], ids[("fa", "P4")]]
    assert "2 cases wait in other languages (1 in en, 1 in ru)" in outs[4].output


FA_CASES = 30
RU_CASES = 30


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_concurrent_claims_by_language_never_share_a_case_nor_cross_a_language(
    db_url, engine, settings, session
) -> None:
    acme = make_account(session, "acme")
    care = make_team(session, "care", languages=[])
    for i in range(FA_CASES + RU_CASES):
        code = "fa" if i % 2 else "ru"
        root = make_post(session, acme, TEXTS[code], created_at=T0 + timedelta(seconds=i))
        root.language = code
        make_case(session, acme, root, team=care, priority=("P1", "P2", "P3")[i % 3])
    readers = {f"fa{i}": ["fa"] for i in range(3)} | {f"ru{i}": ["ru"] for i in range(3)}
    for handle, languages in readers.items():
        _agent(session, handle, care, languages)
    session.commit()
    won: dict[str, list[int]] = {handle: [] for handle in readers}
    refused: dict[str, str] = {}
    barrier = threading.Barrier(len(readers))

    def worker(handle: str) -> None:
        barrier.wait()
        for _ in range(FA_CASES + RU_CASES):
            with session_scope(settings) as s:
                agent = s.scalars(select(Agent).where(Agent.handle == handle)).one()
                try:
                    case = actions.claim_next(session=s, agent=agent, team=None, lease_seconds=900)
                except Conflict as exc:
                    refused[handle] = str(exc)
                    return
                if case is None:
                    return
                won[handle].append(case.id)

    threads = [threading.Thread(target=worker, args=(h,)) for h in readers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    claimed = [c for cases in won.values() for c in cases]
    assert len(claimed) == len(set(claimed)) == FA_CASES + RU_CASES
    session.expire_all()
    language_of = dict(
        session.execute(select(Case.id, Post.language).join(Post, Post.id == Case.root_post_id))
        .tuples()
        .all()
    )
    for handle, cases in won.items():
        assert {language_of[c] for c in cases} <= {handle[:2]}, handle
    assert sum(1 for cases in won.values() if cases) > 2  # the claims really raced
