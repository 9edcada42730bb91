"""The surge summary of a period on both databases, against a plain-Python reference over a
small world: which surges count, time to detect, size, time to first answer (acknowledgements
and replies before the surge left out) and the share answered within the first-response SLA."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from socialcare.metrics.figures import Scope
from socialcare.metrics.surge_figures import surge_figures
from tests.factories import SLA_SECONDS, make_account
from tests.metrics.surge_world import END, NOW, START, at, reference, store, world

FIELDS = (
    "title",
    "detect_s",
    "posts",
    "cases",
    "answered",
    "first_answer_s",
    "within_sla",
    "missed_sla",
    "sla_attainment",
)


def _figures(session: Session, account_id: int | None) -> list[dict[str, object]]:
    scope = Scope(at(START), at(END), at(NOW), account_id)
    found = surge_figures(session=session, scope=scope, sla_seconds=SLA_SECONDS)
    return [{name: getattr(f, name) for name in FIELDS} for f in found]


@pytest.mark.parametrize("brand", [None, "acme"])
def test_the_surge_summary_equals_a_plain_python_reference(session: Session, brand) -> None:
    specs = world()
    accounts = store(session, specs)
    account_id = None if brand is None else accounts[brand].id
    expected = reference(specs, brand)
    assert _figures(session, account_id) == expected
    # The world is not trivial: the reference sees each kind of case it was built for.
    first = expected[0]
    assert (first["cases"], first["posts"], first["within_sla"], first["missed_sla"]) == (
        6,
        5,
        3,
        3,
    )
    assert first["first_answer_s"] == 600.0  # not the acknowledgement after 90 s
    titles = [f["title"] for f in expected]
    wanted = ["outage: app down", "other brand", "billing <b>twice</b>"]
    assert titles == (wanted if brand is None else [wanted[0], wanted[2]])


def test_a_surge_still_within_its_sla_is_not_judged_yet(session: Session) -> None:
    accounts = store(session, world())
    found = {f.title: f for f in _figures_objects(session, accounts["acme"].id)}
    billing = found["billing <b>twice</b>"]
    assert (billing.cases, billing.answered, billing.first_answer_s) == (1, 0, None)
    assert (billing.within_sla, billing.missed_sla, billing.sla_attainment) == (0, 0, None)
    assert billing.detect_s == 120.0
    assert billing.started_at == at(20 * 3600) and billing.detected_at == at(20 * 3600 + 120)


def _figures_objects(session: Session, account_id: int | None) -> list:
    scope = Scope(at(START), at(END), at(NOW), account_id)
    return surge_figures(session=session, scope=scope, sla_seconds=SLA_SECONDS)


def test_answers_after_the_moment_do_not_count_yet(session: Session) -> None:
    accounts = store(session, world())
    scope = Scope(at(START), at(END), at(1 * 3600 + 700), accounts["acme"].id)
    (outage,) = surge_figures(session=session, scope=scope, sla_seconds=SLA_SECONDS)
    # At 1 h 11 m 40 s only the first case's answer (at 1 h 10 m) and the acknowledgement exist.
    assert outage.first_answer_s == 600.0
    assert outage.answered == 2  # the case answered before the surge began is answered too
    assert outage.posts == 5


def test_a_period_without_surges_has_an_empty_summary(session: Session) -> None:
    make_account(session, "acme")
    session.commit()
    assert _figures_objects(session, None) == []
