"""The README's screenshots, made by the browser from what `socialcare run` shows a newcomer.

The bundled replay is loaded on today's clock (its first six hours as the hours before now),
scored by the real models and routed; then Chromium logs in as a lead and saves the queue and the
floor under docs/screenshots/. Every run makes them again, so they never go stale, and the test
checks what they show: today's waits (no case waiting for years) and every open case listed.
"""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser
from sqlalchemy import func, select

from socialcare import flows
from socialcare.cases.models import Case
from socialcare.config import BUNDLED_TWCS
from socialcare.flows.polling import poll
from socialcare.flows.seed import ensure_replay_feed
from socialcare.routing.service import ensure_default_teams
from socialcare.web.queries import QUEUE_PAGE
from tests.conftest import REPO
from tests.standins.x_api import XStandIn
from tests.web.browser_pages import Watch, log_in
from tests.web.browser_support import Site, people, standin, start_site

pytestmark = pytest.mark.slow
SHOTS = REPO / "docs" / "screenshots"
WINDOW = {"width": 1280, "height": 800}
BACKFILL_SECONDS = 6 * 3600.0


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    api: XStandIn = standin()
    folder = tmp_path_factory.mktemp("screenshots")
    site = start_site(f"sqlite:///{folder / 'web.db'}", folder / "var", api)
    with site.session() as s:
        ensure_default_teams(session=s)
        feed = ensure_replay_feed(
            session=s,
            files=[BUNDLED_TWCS],
            speedup=1.0,
            today=True,
            backfill_seconds=BACKFILL_SECONDS,
        )
        s.commit()
        feed_id = feed.id
    runner = flows.InlineRunner(site.settings)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the backfill pages, then the first live poll
        result = poll(feed_id, enqueue=runner, settings=site.settings)
        runner.drain()
        if result.skipped is None and not result.stored:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the backfill did not finish")
    yield site
    site.stop()
    api.stop()


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def _shoot(browser: Browser, site: Site, path: str, name: str) -> Any:
    watch = Watch()
    page = log_in(browser, site, watch, "maya")
    page.set_viewport_size(WINDOW)
    page.goto(path)
    page.wait_for_load_state("networkidle")
    SHOTS.mkdir(parents=True, exist_ok=True)
    target = SHOTS / name
    page.screenshot(path=str(target))
    assert _png_size(target) == (WINDOW["width"], WINDOW["height"])
    watch.assert_clean()
    return page


def test_the_queue_screenshot_shows_todays_open_cases(browser: Browser, demo_site: Site) -> None:
    people(demo_site, "maya", role="lead")
    with demo_site.session() as s:
        waiting = s.scalar(
            select(func.count()).select_from(Case).where(Case.status.in_(("queued", "claimed")))
        )
    assert waiting and waiting >= 10, "the backfill leaves a queue to show"
    page = _shoot(browser, demo_site, "/", "queue.png")
    rows = page.locator("table.queue tbody tr[data-case]")
    assert rows.count() == min(waiting, QUEUE_PAGE)
    shown = page.locator("table.queue").inner_text()
    # On today's clock nothing has waited for years: every wait is in minutes or hours.
    assert not re.search(r"\b\d+d\b", shown), shown[:400]
    page.context.close()


def test_the_floor_screenshot_is_made(browser: Browser, demo_site: Site) -> None:
    people(demo_site, "maya", role="lead")
    page = _shoot(browser, demo_site, "/floor", "floor.png")
    assert "floor" in page.title().lower()
    page.context.close()
