"""The workspace in a real browser (Debian's Chromium through Playwright): log in, claim, reply
(sent once, through the worker's flow, to the X stand-in), resolve; two agents race for one
case; the queue follows changes live; hostile posts render inert; keyboard shortcuts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page
from sqlalchemy import func, select

from socialcare.cases import actions
from socialcare.cases.lengths import length
from socialcare.cases.models import Case, Event, Reply
from socialcare.people.models import Agent
from socialcare.posts.models import STAGE_SCORED, Account
from socialcare.routing.route import route_posts
from tests.factories import make_post, make_score
from tests.standins.x_api import XStandIn
from tests.web.browser_pages import (
    HOSTILE,
    Watch,
    check_inert,
    hostile_text,
    log_in,
    marks_in,
    visible_marks,
)
from tests.web.browser_support import (
    BRAND,
    Site,
    add_cases,
    creates_for,
    holder,
    people,
    reply_state,
    standin,
    start_site,
    wait_for,
)

pytestmark = pytest.mark.slow
LIVE_SECONDS = 2.0


@pytest.fixture(scope="session")
def api() -> Iterator[XStandIn]:
    stand_in = standin()
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="session")
def sqlite_site(api: XStandIn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("browser-sqlite")
    site = start_site(f"sqlite:///{folder / 'web.db'}", folder / "var", api)
    yield site
    site.stop()


@pytest.fixture(scope="session")
def postgres_site(
    api: XStandIn, pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    site = start_site(pg_url, tmp_path_factory.mktemp("browser-pg"), api)
    yield site
    site.stop()


@pytest.fixture
def site(request: pytest.FixtureRequest) -> Site:
    """The SQLite site, or the one named by an indirect parameter."""
    found: Site = request.getfixturevalue(f"{getattr(request, 'param', 'sqlite')}_site")
    return found


@pytest.fixture
def watch() -> Iterator[Watch]:
    seen = Watch()
    yield seen
    seen.assert_clean()


@pytest.fixture
def open_as(browser: Browser, site: Site, watch: Watch) -> Iterator[Any]:
    """open_as(handle): a new browser context of that agent, logged in, on the queue."""
    pages: list[Page] = []

    def opener(handle: str, role: str = "agent") -> Page:
        people(site, handle, role=role)
        page = log_in(browser, site, watch, handle)
        pages.append(page)
        return page

    yield opener
    for page in pages:
        page.context.close()


def test_an_agent_logs_in_claims_replies_once_and_resolves(
    site: Site, api: XStandIn, open_as: Any
) -> None:
    tweet = api.mentions[0]
    [case_id] = add_cases(
        site, "flow", [{"text": "Where is my parcel?", "external_id": tweet["id"]}]
    )
    page = open_as("flo")
    assert page.locator("header .who").inner_text() == "Flo (agent)"

    page.goto("/?team=flow")
    page.click(f'a[href="/cases/{case_id}"]')
    page.wait_for_url(f"**/cases/{case_id}")
    assert page.locator(".muted", has_text="Claim the case to reply").is_visible()
    page.click("[data-act=claim]")
    text = page.locator("#reply-text")
    text.wait_for()

    count, send = page.locator("#reply-count"), page.locator("#reply-send")
    assert send.is_disabled(), "nothing to send yet"
    text.fill("Sorry! 😀 https://example.com/a/long/path")
    assert count.inner_text() == str(length("x", "Sorry! 😀 https://example.com/a/long/path"))
    assert count.inner_text() == "33", "as X counts: the emoji weighs 2, the link 23"
    assert send.is_enabled()
    text.fill("x" * 281)
    assert count.inner_text() == "281"
    assert "late" in (count.get_attribute("class") or "")
    assert send.is_disabled(), "over X's 280 characters"
    text.fill("x" * 280)
    assert send.is_enabled()

    site.worker.hold.clear()  # the worker is busy: the reply waits in the outbox
    api.create_latency = 2.0  # the window in which the reply is "sending"
    try:
        text.fill("Sorry about that, @customer: it ships today.")
        send.dblclick()  # a double click still makes one reply
        row = page.locator("#replies tr.reply")
        row.first.wait_for()
        assert row.count() == 1
        assert row.locator(".reply-state").inner_text().startswith("queued")
        with site.session() as s:
            [reply] = s.scalars(select(Reply).where(Reply.case_id == case_id)).all()
        site.worker.hold.set()
        wait_for(lambda: reply_state(site, reply.id) != "queued")
        page.reload()  # "sending" records no event, so a page shows it when it loads
        assert page.locator("#replies .reply-state").inner_text().startswith("sending")
        link = page.locator("#replies .reply-state a", has_text="public post")
        link.wait_for(timeout=5_000)  # sent, and shown live
    finally:
        api.create_latency = 0.0
        site.worker.hold.set()
    [create] = [c for c in api.creates if c.in_reply_to == tweet["id"]]
    assert link.get_attribute("href") == f"https://x.com/{BRAND}/status/{create.id}"
    assert create.text == "Sorry about that, @customer: it ships today."
    site.worker.inbox.join()  # the redelivered message has run too
    assert creates_for(api, tweet["id"]) == 1, "the reply was published exactly once"

    page.select_option("#close-form select[name=status]", "resolve")
    page.fill("#close-form input[name=reason]", "parcel found, customer happy")
    page.click("#close-form button[type=submit]")
    page.wait_for_url(f"{site.url}/")
    assert page.locator(f'tr[data-case="{case_id}"]').count() == 0
    with site.session() as s:
        case = s.get_one(Case, case_id)
        assert (case.status, case.close_reason) == ("resolved", "parcel found, customer happy")
        assert s.get_one(Reply, reply.id).attempts == 1
    assert site.worker.failures == []


def test_a_failed_reply_shows_why_and_its_retry_sends_it_once(
    site: Site, api: XStandIn, open_as: Any
) -> None:
    tweet = api.mentions[1]
    [case_id] = add_cases(site, "outbox", [{"text": "hello?", "external_id": tweet["id"]}])
    page = open_as("ola")
    page.goto(f"/cases/{case_id}")
    page.click("[data-act=claim]")
    hidden = api.tweets.pop(tweet["id"])  # the customer's post is not visible for now
    try:
        page.fill("#reply-text", "We are looking into it.")
        page.click("#reply-send")
        retry = page.locator("#replies button[data-retry]")
        retry.wait_for(timeout=5_000)  # failed, shown live
        row = page.locator("#replies tr.reply")
        assert row.locator(".reply-state").inner_text() == "failed"
        assert "HTTP 403" in row.inner_text()
        assert "not visible to you" in row.inner_text()
    finally:
        api.tweets[tweet["id"]] = hidden
    assert creates_for(api, tweet["id"]) == 0

    asked: list[int] = []
    page.on("response", lambda r: asked.append(r.status) if r.url.endswith("/retry") else None)
    retry.dblclick()
    page.locator("#replies .reply-state a", has_text="public post").wait_for(timeout=5_000)
    assert retry.count() == 0
    assert asked == [200], "the second click asked nothing"
    reply_id = int(row.get_attribute("data-reply") or 0)
    again = page.evaluate(
        """async (id) => {
            const token = document.querySelector('meta[name="csrf-token"]').content;
            const r = await fetch(`/api/replies/${id}/retry`,
                                  {method: "POST", headers: {"X-CSRF-Token": token}});
            return r.status;
        }""",
        reply_id,
    )
    assert again == 409, "a sent reply is never sent again"
    site.worker.inbox.join()
    assert creates_for(api, tweet["id"]) == 1
    with site.session() as s:
        kinds = s.scalars(select(Event.kind).where(Event.reply_id == reply_id)).all()
    assert kinds.count("reply_retried") == 1
    assert kinds.count("reply_sent") == 1


@pytest.mark.parametrize("site", ["sqlite", "postgres"], indirect=True)
def test_two_agents_race_for_one_case_and_exactly_one_wins(site: Site, open_as: Any) -> None:
    ids = add_cases(site, "race", [{"text": f"race {i}"} for i in range(3)])
    ada, bob = open_as("ada"), open_as("bob")
    for case_id in ids:
        for page in (ada, bob):
            page.goto(f"/cases/{case_id}")
        start = ada.evaluate("Date.now() + 400")
        for page in (ada, bob):  # both click at the same moment
            page.evaluate(
                """(at) => setTimeout(
                    () => document.querySelector('[data-act=claim]').click(), at - Date.now())""",
                start,
            )
        wait_for(lambda c=case_id: holder(site, c) is not None)
        winner = holder(site, case_id)
        with site.session() as s:
            claims = s.scalar(
                select(func.count())
                .select_from(Event)
                .where(Event.case_id == case_id, Event.kind == "claimed")
            )
        assert claims == 1
        won, lost = (ada, bob) if winner == "ada" else (bob, ada)
        won.locator("#reply-text").wait_for()
        error = lost.locator("#case-error")
        error.wait_for()
        assert error.inner_text() == f"case {case_id} is already claimed by {winner}"
        # The page follows live (the holder shown, no claim button) and keeps the message.
        lost.locator("#presence", has_text=f"Held by {winner}").wait_for(timeout=3_000)
        assert lost.locator("[data-act=claim]").count() == 0
        assert error.is_visible()
        assert lost.locator("#reply-text").count() == 0


def test_the_queue_follows_claims_and_new_cases_live(site: Site, open_as: Any) -> None:
    ids = add_cases(site, "live", [{"text": "live one"}, {"text": "live two"}])
    lia, leo = open_as("lia"), open_as("leo")
    waiting = leo.context.new_page()
    waiting.goto("/?status=queued")
    leo.goto("/?team=live")
    row = leo.locator(f'tr[data-case="{ids[0]}"]')
    assert row.locator(".status").inner_text().lower() == "queued"

    lia.goto(f"/cases/{ids[0]}")
    with lia.expect_response(f"**/api/cases/{ids[0]}/claim") as claimed:
        lia.click("[data-act=claim]")
    assert claimed.value.status == 200
    began = time.monotonic()
    waiting.locator(f'tr[data-case="{ids[0]}"]').wait_for(state="detached", timeout=2_000)
    row.locator("td", has_text="lia").wait_for(timeout=2_000)
    assert row.locator(".status").inner_text().lower() == "claimed"
    assert time.monotonic() - began < LIVE_SECONDS

    with site.session() as s:  # as the routing worker does: a scored post becomes a case
        account = s.get_one(Account, site.account_id)
        post = make_post(s, account, "brand new complaint", stage=STAGE_SCORED)
        make_score(s, post, priority="P1", topic="outage", urgency=0.9)
        s.commit()
        [new_id] = route_posts(session=s, post_ids=[post.id], settings=site.settings)
        s.commit()
    began = time.monotonic()
    fresh = waiting.locator(f'tr[data-case="{new_id}"]')
    fresh.wait_for(timeout=2_000)
    assert time.monotonic() - began < LIVE_SECONDS
    assert "brand new complaint" in fresh.inner_text()


def test_changes_made_while_the_stream_was_away_show_once_it_is_back(
    site: Site, open_as: Any
) -> None:
    ids = add_cases(site, "away", [{"text": "claimed behind its back"}])
    ned, nia = open_as("ned"), open_as("nia")
    other = ned.context.new_page()  # connected all along: the live feed runs
    other.goto("/?team=away")
    other.locator("#live-state.on").wait_for()
    held: list[Any] = []
    for page in (ned, nia):  # the stream of each page waits (a slow network, a reconnect)
        page.route("**/api/stream", lambda route: held.append(route))
    ned.goto("/?team=away")
    nia.goto(f"/cases/{ids[0]}")
    while len(held) < 2:  # Playwright's handlers run while a Playwright call waits
        ned.wait_for_timeout(50)
    people(site, "nat")
    with site.session() as s:  # another agent claims it meanwhile
        nat = s.scalars(select(Agent).where(Agent.handle == "nat")).one()
        actions.claim(session=s, agent=nat, case_id=ids[0], lease_seconds=600)
        s.commit()
    ned.wait_for_timeout(1_000)  # the live feed has passed the change on to those connected
    for route in held:
        route.continue_()
    began = time.monotonic()
    ned.locator(f'tr[data-case="{ids[0]}"] .status', has_text="claimed").wait_for(timeout=2_000)
    nia.locator("#case-status", has_text="claimed").wait_for(timeout=2_000)
    assert other.locator(f'tr[data-case="{ids[0]}"] .status').inner_text().lower() == "claimed"
    assert time.monotonic() - began < LIVE_SECONDS


def test_hostile_posts_render_inert_and_legible(site: Site, open_as: Any, watch: Watch) -> None:
    specs = [{"text": hostile_text(p), "handle": p.get("handle")} for p in HOSTILE]
    ids = add_cases(site, "hostile", specs)
    page = open_as("hal")
    response = page.goto("/?team=hostile")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    check_inert(page, "queue")
    for post, case_id in zip(HOSTILE, ids, strict=True):
        cells = page.locator(f'tr[data-case="{case_id}"]')
        row = cells.inner_text()
        for literal in post["shows"]:
            assert literal in row, f"queue: {post['name']}"
        for raw in post.get("hidden", []):
            assert raw not in row, f"queue: {post['name']}"
        check_marks(cells.locator("td.post"), post, "queue")

    for post, case_id in zip(HOSTILE, ids, strict=True):
        response = page.goto(f"/cases/{case_id}")
        assert (
            response is not None
            and "unsafe-inline" not in response.headers["content-security-policy"]
        )
        shown = page.locator("#case").inner_text()
        for literal in post["shows"]:
            assert literal in shown, f"case page: {post['name']}"
        for raw in post.get("hidden", []):
            assert raw not in shown, f"case page: {post['name']}"
        if "repeat" in post:
            assert hostile_text(post) in shown, "the case page shows the whole long text"
        check_marks(page.locator("#thread"), post, "case page")
        check_inert(page, f"case page: {post['name']}")

    # An agent's own note is untrusted too (an agent notes the cases they hold).
    page.goto(f"/cases/{ids[0]}")
    page.click("[data-act=claim]")
    page.locator("#reply-text").wait_for()
    page.fill("#note-form input[name=text]", "<script>window.pwned='note'</script>\u202eok")
    page.click("#note-form button[type=submit]")
    page.locator("#notes li", has_text="window.pwned='note'").wait_for()
    assert "<script>window.pwned='note'</script>[RLO]ok" in page.locator("#notes").inner_text()
    check_inert(page, "note")
    assert watch.dialogs == []


def check_marks(part: Locator, post: dict[str, Any], where: str) -> None:
    """Every control and format character of the post is a mark a reader sees in that part of
    the page: one per character, drawn, with a size."""
    found = visible_marks(part)
    assert len(found) == marks_in(post), f"{where}: {post['name']}"
    for mark in found:
        assert mark["drawn"] and mark["width"] > 4 and mark["height"] > 4, (
            where,
            post["name"],
            mark,
        )


def test_the_queue_fits_a_1280_window_and_cuts_long_handles_whole(site: Site, open_as: Any) -> None:
    long_handle = "averyveryverylonghandle_thatgoesonandon_12345"
    team = "customer-experience-escalations-" + "x" * 30
    # The hostile posts again (a customer has one open case: other handles this time).
    specs = [
        {"text": hostile_text(p), "handle": f"{p.get('handle', 'h')}{i}"}
        for i, p in enumerate(HOSTILE)
    ]
    specs += [{"text": "My parcel never arrived, order 12345678", "handle": long_handle}]
    specs += [{"text": "ordinary question about an invoice", "handle": f"amy{i}"} for i in range(3)]
    ids = add_cases(site, team, specs)
    people(site, "claimer_with_a_rather_long_handle_too")
    with site.session() as s:
        holder_agent = s.scalars(
            select(Agent).where(Agent.handle == "claimer_with_a_rather_long_handle_too")
        ).one()
        actions.claim(session=s, agent=holder_agent, case_id=ids[-1], lease_seconds=600)
        s.commit()
    page = open_as("wes", role="admin")  # the widest header: every link
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"/?team={team}")
    page.locator(f'tr[data-case="{ids[-1]}"] .status', has_text="claimed").wait_for()
    widths = page.evaluate(
        "({scroll: document.documentElement.scrollWidth,"
        " client: document.documentElement.clientWidth,"
        " table: document.querySelector('table.queue').getBoundingClientRect().right})"
    )
    assert widths["client"] < 1280, "the vertical scrollbar takes its room, as on a desktop"
    assert widths["scroll"] <= widths["client"], "no sideways scrolling"
    assert widths["table"] <= widths["client"]

    handle = page.locator(f'tr[data-case="{ids[len(HOSTILE)]}"] td.customer .handle')
    assert handle.inner_text() == f"@{long_handle}"
    assert handle.get_attribute("title") == f"@{long_handle}", "the whole handle, on hover"
    box = handle.evaluate(
        """el => {
            const style = getComputedStyle(el), cell = el.closest("td").getBoundingClientRect();
            const box = el.getBoundingClientRect();
            return {lines: Math.round(box.height / parseFloat(style.lineHeight)),
                    cut: el.scrollWidth > el.clientWidth, ellipsis: style.textOverflow,
                    inside: box.right <= cell.right + 0.5};
        }"""
    )
    assert box == {"lines": 1, "cut": True, "ellipsis": "ellipsis", "inside": True}
    short = page.locator(f'tr[data-case="{ids[-2]}"] td.customer .handle')
    assert short.evaluate("el => el.scrollWidth <= el.clientWidth"), "a short handle is whole"


def test_an_error_naming_a_hostile_handle_shows_its_marks(site: Site, open_as: Any) -> None:
    [case_id] = add_cases(site, "errors", [{"text": "who has it?"}])
    ivy = open_as("ivy")
    ivy.route("**/api/stream", lambda route: route.abort())  # the page stays as it loaded
    ivy.goto(f"/cases/{case_id}")
    sneaky = "\u202eyllam\u202c\x1b[2J"
    people(site, sneaky)
    with site.session() as s:
        taker = s.scalars(select(Agent).where(Agent.handle == sneaky)).one()
        actions.claim(session=s, agent=taker, case_id=case_id, lease_seconds=600)
        s.commit()
    ivy.click("[data-act=claim]")
    error = ivy.locator("#case-error")
    error.wait_for()
    shown = error.inner_text()
    assert "[U+202E]yllam[U+202C][U+001B][2J" in shown
    assert not any(ch in shown for ch in "\u202e\u202c\x1b")
    assert len(visible_marks(error)) == 3


def test_keyboard_shortcuts_claim_the_next_case_and_focus_the_reply(
    site: Site, open_as: Any
) -> None:
    ids = add_cases(
        site,
        "keys",
        [
            {"text": "low", "priority": "P3"},
            {"text": "urgent", "priority": "P1", "minutes": 5},
            {"text": "older urgent", "priority": "P1", "minutes": 20},
        ],
    )
    kim = open_as("kim")
    kim.goto("/?team=keys")
    kim.keyboard.press("j")
    kim.keyboard.press("j")
    assert kim.locator("tr.selected").get_attribute("data-case") == str(ids[1])
    kim.keyboard.press("n")  # next case: the most urgent, longest waiting
    kim.wait_for_url(f"**/cases/{ids[2]}")
    reply = kim.locator("#reply-text")
    reply.wait_for()
    with site.session() as s:
        case = s.get_one(Case, ids[2])
        assert case.status == "claimed"
        assert s.get_one(Agent, case.claimed_by).handle == "kim"

    kim.keyboard.press("r")
    assert kim.evaluate("document.activeElement.id") == "reply-text"
    assert reply.input_value() == "", "the shortcut is not typed"
    kim.keyboard.type("nr")  # letters typed in the reply are text, not shortcuts
    assert reply.input_value() == "nr"
    assert kim.url.endswith(f"/cases/{ids[2]}")

    kim.goto(f"/cases/{ids[0]}")
    kim.keyboard.press("c")  # claim the case on screen
    kim.locator("#reply-text").wait_for()
    with site.session() as s:
        assert s.get_one(Case, ids[0]).status == "claimed"
