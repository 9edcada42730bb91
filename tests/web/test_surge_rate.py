"""The surge page's rate chart: embedded in the page, drawn server-side as a PNG from the
surge's posts, readable by whoever may read the surge, and free of any post's text."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.orm import Session

from socialcare.config import Settings
from socialcare.web import create_app
from socialcare.web import surge_view as view
from tests.surge.world import T0, World, join_surge, surge_world
from tests.web.signin import sign_in

NOW = T0 + timedelta(hours=2)
HOSTILE = '<img src=x onerror=alert(1)> "broken" </figure><script>x()</script>'


@pytest.fixture
def app(settings: Settings, engine: object) -> Any:
    return create_app(settings, clock=lambda: NOW, enqueue=lambda *args: None)


@pytest.fixture
def world(session: Session, settings: Settings) -> World:
    made = surge_world(session, settings, ["ann", "bob", "cem"])
    made.cases.append(join_surge(session, made, "mallory", HOSTILE))
    return made


@pytest.fixture
def agent(app: Any, session: Session) -> Iterator[TestClient]:
    with TestClient(app) as client:
        sign_in(client, session, "al", "agent")
        yield client


def test_the_page_embeds_the_chart_and_the_chart_is_a_png_of_its_posts(
    agent: TestClient, world: World, session: Session
):
    sid = world.surge.id
    page = agent.get(f"/surges/{sid}")
    assert page.status_code == 200
    assert f'<img src="/surges/{sid}/rate.png"' in page.text
    assert "<img src=x" not in page.text and "</figure><script>" not in page.text
    chart = agent.get(f"/surges/{sid}/rate.png")
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(chart.content)).size == (700, 320)
    assert b"onerror" not in chart.content and b"mallory" not in chart.content
    # Since the start (T0) to now, open: 5-minute intervals, the world's posts in them.
    series = view.rate(session, sid, now=NOW)
    assert series is not None and series.step == timedelta(minutes=5)
    assert (series.counts[0], series.counts[6], sum(series.counts)) == (3, 1, 4)
    assert series.usual == pytest.approx(world.surge.expected_per_hour / 12)


def test_the_chart_of_a_missing_surge_is_404_and_anonymous_readers_get_none(
    app: Any, agent: TestClient, world: World
):
    assert agent.get("/surges/999999/rate.png").status_code == 404
    with TestClient(app) as anonymous:
        response = anonymous.get(f"/surges/{world.surge.id}/rate.png", follow_redirects=False)
    assert response.status_code in (302, 303, 401)
    assert not response.content.startswith(b"\x89PNG")
