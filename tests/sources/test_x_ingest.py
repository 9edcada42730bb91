"""The X poll flow at production scale against the X API stand-in over real HTTP (the real tweepy
client): pages committed one by one, the 800-mention window, recent search, billing, faults."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from sqlalchemy import func, select

from socialcare import config, flows
from socialcare.db import session_scope, utcnow
from socialcare.flows import polling
from socialcare.ingest import service as ingestion
from socialcare.ingest.models import IngestionIncident, ReadUsage
from socialcare.leases import hold_lease
from socialcare.posts.models import Account, Post
from tests.standins.x_api import XStandIn

BRAND = "AcmeCare"


class Steps:
    """An enqueue that only records the follow-up steps (this file is about ingestion)."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, tuple[Any, ...]]] = []

    def __call__(self, step: str, *args: Any) -> None:
        self.steps.append((step, args))


def poll(s: config.Settings, account_id: int) -> int:
    return flows.poll_account(account_id, enqueue=Steps(), settings=s)


def account(s: config.Settings, account_id: int) -> Account:
    with session_scope(s) as session:
        found = session.get(Account, account_id)
        assert found is not None
        return found


def stored_ids(s: config.Settings) -> Counter[str]:
    with session_scope(s) as session:
        return Counter(session.execute(select(Post.external_id)).scalars())


def incidents(s: config.Settings, kind: str) -> list[IngestionIncident]:
    with session_scope(s) as session:
        query = select(IngestionIncident).where(IngestionIncident.kind == kind)
        return list(session.execute(query).scalars())


def first_poll(api: XStandIn, s: config.Settings, account_id: int) -> None:
    """Publish a few mentions and poll once, so the cursors are set."""
    api.release(5)
    poll(s, account_id)
    assert account(s, account_id).cursors["mentions_since_id"] == api.mentions[-1]["id"]


def test_a_poll_that_fails_mid_pagination_resumes_after_its_last_committed_page(x, api):
    s, account_id = x
    first_poll(api, s, account_id)
    api.release(650)  # 7 pages of 100
    calls = api.requests["mentions"]
    api.fail_at = {calls + 3}  # the third page of the next poll answers 500
    reads_before = api.reads

    assert poll(s, account_id) == 200
    cursors = account(s, account_id).cursors
    assert cursors["mentions_since_id"] == api.mentions[4]["id"]  # not advanced yet
    assert cursors["mentions_pass"]["count"] == 200
    assert "500" in (account(s, account_id).last_error or "")

    assert poll(s, account_id) == 450
    cursors = account(s, account_id).cursors
    assert "mentions_pass" not in cursors
    assert cursors["mentions_since_id"] == api.mentions[-1]["id"]
    assert set(stored_ids(s)) == {t["id"] for t in api.mentions}
    assert max(stored_ids(s).values()) == 1
    # The failed page was never answered, so nothing was read twice.
    assert api.reads - reads_before == 650
    # A resumed pass checks the gap it may have left (the window moves on): one empty search.
    assert api.requests["search"] == 1
    assert not incidents(s, "window_overflow")


def test_a_burst_past_the_window_is_detected_filled_from_search_and_recorded(x, api):
    s, account_id = x
    first_poll(api, s, account_id)
    api.release(1500)

    poll(s, account_id)

    assert set(stored_ids(s)) == {t["id"] for t in api.mentions}
    assert max(stored_ids(s).values()) == 1
    assert api.requests["search"] == 7  # the 700 mentions the window no longer reaches
    [overflow] = incidents(s, "window_overflow")
    assert overflow.data["found"] == 700 and overflow.data["read"] == 800
    assert overflow.data["since_id"] == api.mentions[4]["id"]
    assert overflow.severity == "warning"
    assert not incidents(s, "gap_unreachable")
    assert account(s, account_id).cursors["mentions_since_id"] == api.mentions[-1]["id"]
    assert api.billed_total == len(api.mentions)  # each post billed once


def test_a_gap_older_than_search_reaches_is_an_incident_of_severity_error(x, api):
    s, account_id = x
    customer = next(u for u in api.users if u != api.brand["id"])
    old = api.publish_at(customer, f"@{BRAND} still waiting", time.time() - 9 * 86400)
    with session_scope(s) as session:
        session.get(Account, account_id).cursors = {"mentions_since_id": old["id"]}
    api.release(1000)

    poll(s, account_id)

    [gap] = incidents(s, "gap_unreachable")
    assert gap.severity == "error" and gap.resolved_at is None
    assert gap.data["since_id"] == old["id"]
    assert "older than recent search reaches" in gap.detail
    # What search could reach (all 1,000 were published just now) is stored.
    assert {t["id"] for t in api.mentions[1:]} <= set(stored_ids(s))


def test_a_quiet_day_reads_each_post_once_and_needs_no_search(x, api):
    s, account_id = x
    first_poll(api, s, account_id)
    for _ in range(3):
        api.release(120)
        poll(s, account_id)
    assert api.requests["search"] == 0
    assert not incidents(s, "window_overflow")
    with session_scope(s) as session:
        usage = session.execute(select(ReadUsage)).scalar_one()
    assert usage.billed == api.billed_total == len(api.mentions) == 365
    # 4 polls of 2 streams, 2 pages for each 120 mentions: 11 requests (plus the user lookup).
    assert usage.requests == api.requests["mentions"] + api.requests["tweets"] + 1 == 12


def test_a_post_read_again_the_same_day_is_billed_once(x, api):
    s, account_id = x
    first_poll(api, s, account_id)
    with session_scope(s) as session:
        session.get(Account, account_id).cursors = {}
    poll(s, account_id)
    with session_scope(s) as session:
        usage = session.execute(select(ReadUsage)).scalar_one()
    assert (usage.reads, usage.billed) == (10, 5)
    assert api.billed_total == 5


def test_revoked_credentials_mark_the_account_failing_with_an_alert_and_no_retry(x, api, caplog):
    s, account_id = x
    first_poll(api, s, account_id)
    api.revoked = True
    calls = api.requests["mentions"]

    poll(s, account_id)
    assert flows.poll_due(enqueue=(steps := Steps()), settings=s) == 0
    poll(s, account_id)

    assert steps.steps == []
    assert api.requests["mentions"] == calls + 1
    acct = account(s, account_id)
    assert acct.failing and "401" in (acct.last_error or "")
    [alert] = incidents(s, "auth_failed")
    assert alert.severity == "error" and "401" in alert.detail
    assert any("ingestion alert" in r.message for r in caplog.records)


def test_malformed_json_names_the_account_and_endpoint_and_keeps_the_cursor(x, api):
    s, account_id = x
    first_poll(api, s, account_id)
    before = dict(account(s, account_id).cursors)
    api.release(30)
    api.fault_kinds, api.faults = ("malformed",), 1.0

    assert poll(s, account_id) == 0

    acct = account(s, account_id)
    assert acct.cursors == before and not acct.failing
    assert "@AcmeCare" in acct.last_error and "mentions" in acct.last_error
    assert "malformed JSON" in acct.last_error
    assert acct.next_poll_at is not None and acct.next_poll_at > utcnow()
    api.faults = 0.0
    poll(s, account_id)
    assert set(stored_ids(s)) == {t["id"] for t in api.mentions}


def test_partial_errors_beside_data_are_kept_and_the_posts_stored(x, api):
    s, account_id = x
    first_poll(api, s, account_id)
    api.release(30)
    api.fault_kinds, api.faults = ("partial",), 1.0

    poll(s, account_id)

    assert set(stored_ids(s)) == {t["id"] for t in api.mentions}
    kept = incidents(s, "partial_errors")
    assert kept and "Could not find tweet" in kept[0].detail
    assert kept[0].data["errors"][0]["title"] == "Not Found Error"


def test_a_spent_budget_reschedules_the_poll_for_the_reset_without_a_request(x, api):
    s, account_id = x
    api.rate_limit = 4
    first_poll(api, s, account_id)  # 1 lookup (own window) + 1 mentions + 1 timeline
    api.release(450)
    poll(s, account_id)  # 3 pages of mentions spend the window; the fourth is not asked for
    calls = dict(api.requests)

    poll(s, account_id)

    assert dict(api.requests) == calls  # the budget said no before any request
    acct = account(s, account_id)
    reset = api._windows["mentions"][0]
    assert abs(acct.next_poll_at.timestamp() - reset) < 2
    assert "budget is spent" in (acct.last_error or "")
    assert calls["mentions"] == 4
    assert acct.cursors["mentions_pass"]["count"] == 300


def test_the_monthly_read_cap_warns_at_80_percent_and_pauses_polling_at_100(x, api, monkeypatch):
    s, account_id = x
    s = s.model_copy(update={"x_monthly_read_cap": 100})
    first_poll(api, s, account_id)
    api.release(80)
    poll(s, account_id)
    assert not incidents(s, "read_cap_warning")
    poll(s, account_id)  # starts at 85 billed
    [warning] = incidents(s, "read_cap_warning")
    assert warning.data["billed"] == 85 and warning.severity == "warning"
    api.release(20)
    poll(s, account_id)  # 105 billed: the next poll pauses
    calls = dict(api.requests)

    assert poll(s, account_id) == 0

    assert dict(api.requests) == calls
    [reached] = incidents(s, "read_cap_reached")
    assert reached.severity == "error" and reached.data["cap"] == 100
    acct = account(s, account_id)
    assert acct.next_poll_at == ingestion.next_month_start(utcnow())


def test_a_poll_while_another_worker_holds_the_account_does_nothing(x, api):
    s, account_id = x
    first_poll(api, s, account_id)
    api.release(10)
    with session_scope(s) as session:
        held = hold_lease(
            session=session, name=f"poll:{account_id}", holder="other", seconds=60, now=utcnow()
        )
    assert held
    calls = sum(api.requests.values())

    assert poll(s, account_id) == 0
    assert sum(api.requests.values()) == calls


def test_the_poll_interval_shortens_while_mentions_flow_and_lengthens_when_quiet(x, api):
    s, account_id = x
    first_poll(api, s, account_id)
    api.release(150)
    poll(s, account_id)
    busy = account(s, account_id).poll_interval_seconds
    poll(s, account_id)
    quiet = account(s, account_id).poll_interval_seconds
    assert busy == 15.0  # POLL_INTERVAL_SECONDS / 4: a full page came in
    assert quiet == 22.5


def test_posts_are_unique_on_platform_and_id_whatever_the_retries(x, api):
    s, account_id = x
    first_poll(api, s, account_id)
    api.release(300)
    api.fault_kinds, api.faults = ("500", "drop", "malformed", "partial"), 0.4
    for _ in range(25):
        with session_scope(s) as session:
            session.get(Account, account_id).next_poll_at = None
        poll(s, account_id)
    api.faults = 0.0
    poll(s, account_id)
    with session_scope(s) as session:
        count = session.execute(select(func.count()).select_from(Post)).scalar_one()
    assert count == len(api.mentions) == len(stored_ids(s))


def test_cursors_moved_under_a_poll_stop_it_before_its_page_is_stored(x, api, monkeypatch):
    s, account_id = x
    first_poll(api, s, account_id)
    api.release(250)
    before = stored_ids(s)
    with session_scope(s) as session:
        billed = ingestion.billed_since(
            session=session, account_id=account_id, since=utcnow().date()
        )
    moved = {"mentions_since_id": api.mentions[0]["id"]}  # an operator rewinds the account
    store_page = polling._store_page

    def rewound_first(*args: Any, **kwargs: Any) -> int | None:
        with session_scope(s) as session:
            session.get_one(Account, account_id).cursors = moved
        return store_page(*args, **kwargs)

    monkeypatch.setattr(polling, "_store_page", rewound_first)
    assert poll(s, account_id) == 0
    assert stored_ids(s) == before  # the page read is not stored...
    assert account(s, account_id).cursors == moved  # ...nor are the cursors it leaves
    with session_scope(s) as session:  # ...nor its reads
        assert billed == ingestion.billed_since(
            session=session, account_id=account_id, since=utcnow().date()
        )
