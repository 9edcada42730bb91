"""Digests show both units, each labelled: first response per case and next reply per customer
post (on both databases for the figures; the email text, HTML and Slack message for the labels)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from socialcare import config
from socialcare.metrics.digest import build_digest
from socialcare.metrics.digest_render import render_html, render_text, slack_payload
from tests.factories import make_account, make_case, make_post
from tests.metrics.digest_samples import sample_digest

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2024, 5, 2, 1, 0, tzinfo=UTC)  # the day digest covers May 1 (UTC)


def _world(session: Session) -> None:
    """A P2 case of three customer posts: answered after 300 s, after 1800 s, and never."""
    acme = make_account(session, "acme")

    def at(seconds: float) -> datetime:
        return T0 + timedelta(seconds=seconds)

    first = make_post(session, acme, created_at=at(0), author_handle="kim")
    case = make_case(session, acme, first, priority="P2", first_response_at=at(300))
    b1 = make_post(session, acme, "sorry", created_at=at(300), is_brand=True, in_reply_to=first)
    second = make_post(
        session, acme, created_at=at(600), author_handle="kim", in_reply_to=b1, case=case
    )
    make_post(session, acme, "fixed?", created_at=at(2400), is_brand=True, in_reply_to=second)
    make_post(
        session, acme, created_at=at(3000), author_handle="kim", in_reply_to=second, case=case
    )
    session.commit()


def test_the_digest_carries_next_reply_per_post_beside_first_response_per_case(
    session: Session, settings: config.Settings
) -> None:
    _world(session)
    digest = build_digest(session=session, settings=settings, period="day", now=NOW, tz="UTC")
    assert (digest.total.cases, digest.total.p50_s) == (1, pytest.approx(300.0))
    n = digest.next_reply
    assert n is not None
    assert (n.cases, n.answered, n.unanswered) == (3, 2, 1)
    assert n.p50_s == pytest.approx(1050.0)
    # By NOW the third post has waited past the P2 next-reply SLA (3600 s): a miss.
    assert n.sla_attainment == pytest.approx(2 / 3)
    assert digest.next_reply_previous is not None and digest.next_reply_previous.cases == 0

    text = render_text(digest)
    assert "First response per case\nCases 1 · answered 1 · unanswered 0" in text
    assert "Next reply per customer post (every post's wait for the brand's next reply)" in text
    assert "Posts 3 · answered 2 · unanswered 1\np50 17m 30s" in text
    assert "Next-reply SLA attainment 67%" in text
    html = render_html(digest, chart_cids={})
    assert "<strong>First response per case</strong>" in html
    assert "<strong>Next reply per customer post</strong>" in html
    assert "<td><strong>p50 next reply</strong></td><td>17m 30s" in html
    slack = str(slack_payload(digest, chart_url=None))
    assert "*p50 next reply per post*\\n17m 30s" in slack
    assert "*Customer posts*\\n3 · answered 2 · unanswered 1" in slack


def test_the_next_reply_sla_is_the_settings_own(
    session: Session, settings: config.Settings
) -> None:
    _world(session)
    relaxed = settings.model_copy(
        update={"next_reply_sla_seconds": {"P1": 900, "P2": 86400, "P3": 86400, "P4": 86400}}
    )
    digest = build_digest(session=session, settings=relaxed, period="day", now=NOW, tz="UTC")
    assert digest.next_reply is not None and digest.next_reply.sla_attainment == 1.0


def test_a_digest_without_post_figures_shows_no_next_reply_section() -> None:
    digest = sample_digest()
    assert digest.next_reply is None
    assert "Next reply" not in render_text(digest)
    assert "next reply" not in render_html(digest, chart_cids={}).lower()
