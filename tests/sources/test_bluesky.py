"""The Bluesky source's failures, through the real atproto client over real HTTP against a
scripted stand-in of a PDS: every one a SourceError of the right kind, none a library's own."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from socialcare import config
from socialcare.errors import RateLimited, ReplyOutcomeUnknown, SourceError
from socialcare.sources.base import AccountRef
from socialcare.sources.bluesky import BlueskySource
from tests.standins.bluesky_api import DID, Answer, BlueskyStandIn, error

NOTIFICATIONS = "app.bsky.notification.listNotifications"
ACCOUNT = AccountRef(id=1, platform="bluesky", handle="brand.test")
TARGET = "did:plc:annannannannannannannanna/3kabcdefghij2"


@pytest.fixture
def standin():
    server = BlueskyStandIn().start()
    yield server
    server.stop()


@pytest.fixture
def source(standin, monkeypatch) -> BlueskySource:
    for key, value in {
        "BLUESKY_SERVICE_URL": standin.url,
        "BLUESKY_HANDLE": "brand.test",
        "BLUESKY_APP_PASSWORD": "app-pass-word",
        "HTTP_TIMEOUT_SECONDS": "0.5",
    }.items():
        monkeypatch.setenv(key, value)
    config.get_settings.cache_clear()
    yield BlueskySource(config.get_settings())
    config.get_settings.cache_clear()


def _notification(text: str) -> dict:
    return {
        "uri": f"at://{TARGET.split('/')[0]}/app.bsky.feed.post/3kabcdefghij2",
        "cid": "bafy",
        "reason": "mention",
        "indexedAt": datetime.now(UTC).isoformat(),
        "author": {"did": TARGET.split("/")[0], "handle": "ann.test"},
        "record": {
            "$type": "app.bsky.feed.post",
            "text": text,
            "createdAt": "2026-01-01T00:00:00Z",
        },
    }


def test_a_429_is_rate_limited_until_the_reset_the_headers_give(standin, source):
    reset = int(time.time()) + 120
    standin.script[NOTIFICATIONS] = [
        error(
            429, "RateLimitExceeded", **{"ratelimit-remaining": "0", "ratelimit-reset": str(reset)}
        )
    ]
    with pytest.raises(RateLimited) as caught:
        source.fetch(ACCOUNT, {})
    assert caught.value.retry_after == datetime.fromtimestamp(reset, tz=UTC)
    assert not caught.value.permanent and caught.value.status == 429


def test_a_spent_budget_on_a_good_answer_waits_for_the_reset(standin, source):
    reset = int(time.time()) + 300
    limits = {"ratelimit-limit": "3000", "ratelimit-remaining": "0", "ratelimit-reset": str(reset)}
    standin.script["app.bsky.feed.getAuthorFeed"] = [Answer(body={"feed": []}, headers=limits)]
    result = source.fetch(ACCOUNT, {})
    assert 290 < result.next_poll_in <= 300
    # The window is kept for `sources status` (the feed's answer came last, so it is the one).
    window = result.rate_windows["api"]
    assert (window.limit, window.remaining) == (3000, 0)
    assert window.reset_at == datetime.fromtimestamp(reset, tz=UTC)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_worth_retrying(standin, source, status):
    standin.script[NOTIFICATIONS] = [error(status, "InternalServerError")]
    with pytest.raises(SourceError) as caught:
        source.fetch(ACCOUNT, {})
    assert not caught.value.permanent and not isinstance(caught.value, RateLimited)
    assert str(status) in str(caught.value) and "notifications of brand.test" in str(caught.value)


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures_on_a_poll_are_permanent(standin, source, status):
    standin.script[NOTIFICATIONS] = [error(status, "AuthenticationRequired")]
    with pytest.raises(SourceError) as caught:
        source.fetch(ACCOUNT, {})
    assert caught.value.permanent and caught.value.status == status


def test_a_refused_login_is_permanent_and_names_the_settings_not_the_password(standin, source):
    standin.login_answer = error(401, "AuthenticationRequired", "Invalid identifier or password")
    with pytest.raises(SourceError) as caught:
        source.fetch(ACCOUNT, {})
    assert caught.value.permanent and "BLUESKY_APP_PASSWORD" in str(caught.value)
    assert "app-pass-word" not in str(caught.value)


def test_an_expired_token_logs_in_again_once_and_carries_on(standin, source):
    standin.script[NOTIFICATIONS] = [
        error(400, "ExpiredToken", "Token has expired"),
        Answer(body={"notifications": [_notification("still broken")]}),
    ]
    result = source.fetch(ACCOUNT, {})
    assert [p.text for p in result.posts] == ["still broken"]
    assert standin.logins == 2


def test_the_session_is_reused_across_polls(standin, source):
    for _ in range(3):
        source.fetch(ACCOUNT, {})
    assert standin.logins == 1


@pytest.mark.parametrize(
    "body", [b'{"notifications": [', b"<html>bad gateway</html>", b"[1, 2]", b'{"feed": []}']
)
def test_an_answer_that_is_not_a_page_is_a_clear_error_and_keeps_the_cursor(standin, source, body):
    standin.script[NOTIFICATIONS] = [Answer(body=body)]
    cursors = {"notifications_at": "2026-01-01T00:00:00+00:00"}
    with pytest.raises(SourceError, match=r"notifications of brand\.test") as caught:
        source.fetch(ACCOUNT, cursors)
    assert not caught.value.permanent
    assert cursors == {"notifications_at": "2026-01-01T00:00:00+00:00"}


def test_a_slow_answer_times_out_as_a_source_error(standin, source):
    standin.script[NOTIFICATIONS] = [Answer(body={"notifications": []}, delay=1.5)]
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"(?i)timeout") as caught:
        source.fetch(ACCOUNT, {})
    assert not caught.value.permanent and time.monotonic() - started < 1.4


def test_a_lone_surrogate_escape_in_a_post_does_not_fail_the_page(standin, source):
    page = json.dumps({"notifications": [_notification("PLACEHOLDER")]})
    standin.script[NOTIFICATIONS] = [
        Answer(body=page.replace("PLACEHOLDER", "broken \\ud83d app").encode())
    ]
    (post,) = source.fetch(ACCOUNT, {}).posts
    assert post.text == "broken \ufffd app"


PROFILES = "app.bsky.actor.getProfiles"


def test_customers_posts_carry_their_authors_followers_from_their_profiles(standin, source):
    ann = TARGET.split("/")[0]
    standin.script[NOTIFICATIONS] = [Answer(body={"notifications": [_notification("help")]})]
    profile = {
        "did": ann,
        "handle": "ann.test",
        "followersCount": 48200,
        "verification": {"verifiedStatus": "valid"},
    }
    standin.script[PROFILES] = [Answer(body={"profiles": [profile]})]

    result = source.fetch(ACCOUNT, {})

    (post,) = result.posts
    assert (post.author_followers, post.author_verified) == (48200, True)
    assert standin.calls.count(("GET", PROFILES)) == 1
    assert result.requests_made == 3  # notifications, the brand's feed, the profiles


def test_a_failed_profile_lookup_leaves_the_reach_unknown_and_keeps_the_posts(standin, source):
    standin.script[NOTIFICATIONS] = [Answer(body={"notifications": [_notification("help")]})]
    standin.script[PROFILES] = [error(502, "UpstreamFailure")]

    (post,) = source.fetch(ACCOUNT, {}).posts

    assert post.text == "help" and post.author_followers is None


def _thread_target(standin) -> None:
    uri = f"at://{TARGET.split('/')[0]}/app.bsky.feed.post/3kabcdefghij2"
    view = {**_notification("help"), "uri": uri, "cid": "bafyparent"}
    standin.script["app.bsky.feed.getPosts"] = [Answer(body={"posts": [view]})]


@pytest.mark.parametrize(
    "answer",
    [error(503, "ServiceUnavailable"), Answer(body={"uri": "at://x"}), Answer(body=b"{", delay=0)],
)
def test_a_reply_whose_answer_is_unclear_is_an_unknown_outcome(standin, source, answer):
    _thread_target(standin)
    standin.script["com.atproto.repo.createRecord"] = [answer]
    with pytest.raises(ReplyOutcomeUnknown):
        source.send_reply(ACCOUNT, in_reply_to=TARGET, text="We're on it")


def test_a_reply_timing_out_after_sending_is_an_unknown_outcome(standin, source):
    _thread_target(standin)
    standin.script["com.atproto.repo.createRecord"] = [Answer(delay=1.5)]
    with pytest.raises(ReplyOutcomeUnknown):
        source.send_reply(ACCOUNT, in_reply_to=TARGET, text="We're on it")


def test_a_reply_to_a_deleted_post_is_refused_for_good_without_posting(standin, source):
    standin.script["app.bsky.feed.getPosts"] = [Answer(body={"posts": []})]
    with pytest.raises(SourceError, match="gone") as caught:
        source.send_reply(ACCOUNT, in_reply_to=TARGET, text="We're on it")
    assert caught.value.permanent
    assert ("POST", "com.atproto.repo.createRecord") not in standin.calls


def test_a_reply_the_pds_refuses_is_permanent_not_unknown(standin, source):
    _thread_target(standin)
    standin.script["com.atproto.repo.createRecord"] = [error(400, "InvalidRequest", "too long")]
    with pytest.raises(SourceError) as caught:
        source.send_reply(ACCOUNT, in_reply_to=TARGET, text="We're on it")
    assert caught.value.permanent and not isinstance(caught.value, ReplyOutcomeUnknown)


def test_credentials_for_another_account_are_refused(standin, source):
    other = AccountRef(id=2, platform="bluesky", handle="someone-else.test")
    with pytest.raises(SourceError, match="BLUESKY_HANDLE") as caught:
        source.fetch(other, {})
    assert caught.value.permanent and standin.logins == 0
    wrong_did = AccountRef(id=3, platform="bluesky", handle="brand.test", external_id="did:plc:z")
    with pytest.raises(SourceError, match=DID):
        source.fetch(wrong_did, {})
