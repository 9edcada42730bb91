"""/metrics on both databases: every gauge computed from rows, checked against hand counts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from socialcare.config import Settings
from socialcare.metrics.models import DigestDelivery
from socialcare.ops.metrics import FAMILIES, build_registry, render
from socialcare.people.models import Team
from socialcare.posts.models import STAGE_FAILED, STAGE_INGESTED, STAGE_SCORED
from socialcare.web import create_app
from tests.factories import T0, make_account, make_case, make_post, make_reply, make_team
from tests.web.signin import bearer

NOW = T0 + timedelta(hours=2)
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample as {(name, labels): value}."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def of(samples: Samples, name: str) -> dict[tuple[str, ...], float]:
    """The samples of one metric, keyed by their label values in the family's label order."""
    names = FAMILIES[name][1]
    return {
        tuple(dict(labels)[label] for label in names): value
        for (sample, labels), value in samples.items()
        if sample == name
    }


@pytest.fixture
def client(settings: Settings, engine: object, session: Session) -> Iterator[TestClient]:
    with TestClient(create_app(settings, clock=lambda: NOW)) as c:
        c.headers.update(bearer(session))
        yield c


def _scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["x-content-type-options"] == "nosniff"
    return parse(response.text)


def _world(session: Session) -> None:
    def ago(seconds: int) -> datetime:
        return NOW - timedelta(seconds=seconds)

    acme = make_account(session, "acme", config={"polled": True}, last_polled_at=ago(90))
    make_account(session, "beta", config={"polled": True}, created_at=ago(3600))
    make_account(session, "gamma", config={"polled": False}, last_polled_at=ago(5000))
    make_account(session, "delta", config={"polled": True}, last_polled_at=ago(1200), failing=True)
    make_account(session, "old", config={"polled": True}, last_polled_at=ago(9), active=False)
    make_account(session, "old2", failing=True, active=False)
    billing, delivery = make_team(session, "billing"), make_team(session, "delivery")

    def case(priority: str, team: Team | None, status: str = "queued") -> None:
        make_case(
            session, acme, make_post(session, acme), priority=priority, team=team, status=status
        )

    for priority, team in [("P1", billing), ("P1", billing), ("P3", billing), ("P2", delivery)]:
        case(priority, team)
    case("P4", None)
    case("P1", delivery, "claimed")
    case("P2", billing, "resolved")

    make_post(session, acme, stage=STAGE_INGESTED, ingested_at=ago(300))
    make_post(session, acme, stage=STAGE_INGESTED, ingested_at=ago(100))
    make_post(session, acme, stage=STAGE_SCORED, ingested_at=ago(200))
    make_post(session, acme, is_brand=True, stage=STAGE_INGESTED, ingested_at=ago(700))
    make_post(session, acme, stage=STAGE_FAILED, ingested_at=ago(9000))
    make_post(session, acme, stage=STAGE_FAILED, ingested_at=ago(9000))

    root = make_post(session, acme)
    target = make_case(session, acme, root, status="responded")
    make_reply(session, target, state="queued", created_at=ago(45))
    make_reply(session, target, state="queued", created_at=ago(10))
    make_reply(session, target, state="sent", created_at=ago(4000))
    make_reply(session, target, state="failed", created_at=ago(4000))
    make_reply(session, target, state="failed", created_at=ago(4000))
    make_reply(session, target, state="unknown", created_at=ago(4000))
    for n, state in enumerate(("sent", "sent", "pending", "failed")):
        session.add(
            DigestDelivery(
                recipient=f"email:lead{n}@example.com",
                tz="UTC",
                period="day",
                period_start=ago(86400 * 2),
                period_end=ago(86400),
                state=state,
            )
        )
    session.commit()


def test_metrics_from_rows(client: TestClient, session: Session) -> None:
    _world(session)
    samples = _scrape(client)
    assert of(samples, "socialcare_queue_depth") == {
        ("billing", "P1"): 2,
        ("billing", "P2"): 0,
        ("billing", "P3"): 1,
        ("billing", "P4"): 0,
        ("delivery", "P1"): 0,
        ("delivery", "P2"): 1,
        ("delivery", "P3"): 0,
        ("delivery", "P4"): 0,
        ("none", "P4"): 1,
    }
    assert of(samples, "socialcare_cases") == {
        ("new",): 0,
        ("queued",): 5,
        ("claimed",): 1,
        ("responded",): 1,
        ("resolved",): 1,
        ("dismissed",): 0,
    }
    # score: the older of two ingested customer posts; route: the ingested brand post (700 s)
    # is older than the scored one (200 s); send: the older queued reply.
    assert of(samples, "socialcare_oldest_pending_step_seconds") == {
        ("score",): 300,
        ("route",): 700,
        ("send",): 45,
    }
    assert of(samples, "socialcare_replies") == {
        ("queued",): 2,
        ("sending",): 0,
        ("sent",): 1,
        ("failed",): 2,
        ("unknown",): 1,
    }
    # Active polled accounts only; beta was never polled: lag since it was added.
    assert of(samples, "socialcare_poll_lag_seconds") == {
        ("x:acme",): 90,
        ("x:beta",): 3600,
        ("x:delta",): 1200,
    }
    assert of(samples, "socialcare_digest_deliveries") == {
        ("pending",): 1,
        ("sending",): 0,
        ("sent",): 2,
        ("failed",): 1,
    }
    assert of(samples, "socialcare_failed_steps") == {
        ("post",): 2,
        ("reply",): 2,
        ("digest",): 1,
        ("account",): 1,
    }
    assert of(samples, "socialcare_accounts_failing") == {(): 1}
    assert of(samples, "socialcare_metrics_database_up") == {(): 1}


def test_metrics_follow_the_database(client: TestClient, session: Session) -> None:
    """Nothing is cached: every scrape reads the rows as they are now."""
    samples = _scrape(client)
    assert of(samples, "socialcare_queue_depth") == {}
    assert of(samples, "socialcare_cases")[("queued",)] == 0
    assert of(samples, "socialcare_oldest_pending_step_seconds") == {
        ("score",): 0,
        ("route",): 0,
        ("send",): 0,
    }
    assert of(samples, "socialcare_poll_lag_seconds") == {}
    assert of(samples, "socialcare_failed_steps") == {
        ("post",): 0,
        ("reply",): 0,
        ("digest",): 0,
        ("account",): 0,
    }
    assert of(samples, "socialcare_accounts_failing") == {(): 0}

    acme = make_account(session, "acme", failing=True)
    make_case(session, acme, make_post(session, acme), priority="P2")
    session.commit()
    samples = _scrape(client)
    assert of(samples, "socialcare_queue_depth") == {("none", "P2"): 1}
    assert of(samples, "socialcare_accounts_failing") == {(): 1}


def test_every_family_is_exposed_with_help(client: TestClient) -> None:
    text = client.get("/metrics").text
    for name, (doc, _) in FAMILIES.items():
        assert f"# HELP {name} {doc}" in text
        assert f"# TYPE {name} gauge" in text


def test_registry_is_per_app(settings: Settings, engine: object) -> None:
    first, second = create_app(settings), create_app(settings)
    assert first.state.metrics_registry is not second.state.metrics_registry
    assert REGISTRY.get_sample_value("socialcare_accounts_failing") is None


def test_unreachable_database_is_reported_not_raised() -> None:
    engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:5499/none")
    registry = build_registry(sessionmaker(engine), lambda: NOW)
    samples = parse(render(registry).decode())
    assert samples == {("socialcare_metrics_database_up", frozenset()): 0}
    engine.dispose()
