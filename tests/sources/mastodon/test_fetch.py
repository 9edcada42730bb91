"""The Mastodon source against a local stand-in of the Mastodon API over real HTTP; Mastodon.py
does the requests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from socialcare.errors import RateLimited, SourceError
from socialcare.sources.base import AccountRef, IncomingPost
from socialcare.sources.mastodon_parse import MAX_HTML, html_to_text
from tests.sources.mastodon.support import ACCOUNT, make_source, queries_to

# -- cursors and paging --------------------------------------------------------------------


def test_the_first_poll_reads_only_the_newest_page_and_sets_the_cursors(api, ann) -> None:
    source = make_source(api, MASTODON_PAGE_SIZE=2)
    for i in range(5):
        api.post(ann, f"@AcmeCare old complaint {i}")

    result = source.fetch(ACCOUNT, {})

    assert [p.text for p in result.posts] == [
        "@AcmeCare old complaint 3",
        "@AcmeCare old complaint 4",
    ]
    assert result.cursors["notifications_min_id"] == api.notifications[-1]["id"]
    assert result.cursors["account_id"] == api.brand["id"]
    assert api.requests["notifications"] == 1
    assert result.requests_made == 3  # verify_credentials, notifications, statuses


def test_every_page_newer_than_the_cursor_is_read_once_and_nothing_is_missed_across_polls(
    api, ann
) -> None:
    source = make_source(api, MASTODON_PAGE_SIZE=2)
    api.post(ann, "@AcmeCare first")
    cursors = source.fetch(ACCOUNT, {}).cursors
    for i in range(7):
        api.post(ann, f"@AcmeCare burst {i}")

    second = source.fetch(ACCOUNT, cursors)
    api.post(ann, "@AcmeCare after the burst")
    third = source.fetch(ACCOUNT, second.cursors)
    fourth = source.fetch(ACCOUNT, third.cursors)

    assert [p.text for p in second.posts] == [f"@AcmeCare burst {i}" for i in range(7)]
    assert [p.text for p in third.posts] == ["@AcmeCare after the burst"]
    assert fourth.posts == []
    sent = [q["min_id"][0] for q in queries_to(api, "/notifications") if "min_id" in q]
    # Each page starts right after the newest item of the one before: no overlap, no gap.
    ids = [n["id"] for n in api.notifications]
    assert sent[:5] == [ids[0], ids[2], ids[4], ids[6], ids[7]]
    assert all(q["types[]"] == ["mention"] for q in queries_to(api, "/notifications"))
    assert fourth.cursors["notifications_min_id"] == ids[-1]


def test_a_poll_stops_after_fifty_pages_and_asks_to_be_polled_again_at_once(
    api, ann, monkeypatch
) -> None:
    monkeypatch.setattr("socialcare.sources.mastodon.MAX_PAGES", 3)
    source = make_source(api, MASTODON_PAGE_SIZE=1)
    api.post(ann, "@AcmeCare start")
    cursors = source.fetch(ACCOUNT, {}).cursors
    for i in range(5):
        api.post(ann, f"@AcmeCare n{i}")

    first = source.fetch(ACCOUNT, cursors)
    rest = source.fetch(ACCOUNT, first.cursors)

    assert [p.text for p in first.posts] == ["@AcmeCare n0", "@AcmeCare n1", "@AcmeCare n2"]
    assert first.next_poll_in == 1.0
    assert [p.text for p in rest.posts] == ["@AcmeCare n3", "@AcmeCare n4"]


def test_without_link_headers_full_pages_are_followed_by_min_id_by_hand(api, ann) -> None:
    api.links = False
    source = make_source(api, MASTODON_PAGE_SIZE=2)
    api.post(ann, "@AcmeCare start")
    cursors = source.fetch(ACCOUNT, {}).cursors
    for i in range(5):
        api.post(ann, f"@AcmeCare n{i}")

    result = source.fetch(ACCOUNT, cursors)

    assert [p.text for p in result.posts] == [f"@AcmeCare n{i}" for i in range(5)]
    assert result.cursors["notifications_min_id"] == api.notifications[-1]["id"]


def test_an_empty_first_poll_sets_cursors_so_all_later_posts_are_read_through_every_page(
    api, ann, source
) -> None:
    first = source.fetch(ACCOUNT, {})
    mentions = [api.post(ann, f"@AcmeCare complaint {i}") for i in range(45)]
    answers = [
        api.post(api.brand, f"@ann@other.social answer {i}", in_reply_to=m)
        for i, m in enumerate(mentions)
    ]

    second = source.fetch(ACCOUNT, first.cursors)

    assert first.posts == []
    assert first.cursors["notifications_min_id"] == first.cursors["statuses_min_id"] == "0"
    ids = {p.external_id for p in second.posts}
    assert ids == {m["id"] for m in mentions} | {a["id"] for a in answers}  # 90, pages of 40
    assert second.cursors["notifications_min_id"] == api.notifications[-1]["id"]
    assert second.cursors["statuses_min_id"] == answers[-1]["id"]


def test_only_mention_notifications_become_posts(api, ann) -> None:
    own = api.post(api.brand, "Big launch today!")
    api.favourite(ann, own)
    api.post(ann, "@AcmeCare the launch broke my login")

    result = make_source(api).fetch(ACCOUNT, {"statuses_min_id": own["id"]})

    assert [p.text for p in result.posts] == ["@AcmeCare the launch broke my login"]


# -- the brand's own statuses and threads ---------------------------------------------------


def test_the_brands_own_posts_reblogs_and_replies_are_flagged(api, ann, source) -> None:
    start = source.fetch(ACCOUNT, {})
    complaint = api.post(ann, "@AcmeCare my order never came")
    api.post(api.brand, "Big launch today!")
    api.post(api.brand, "", reblog_of=complaint)
    answer = api.post(api.brand, "@ann@other.social so sorry, DM us", in_reply_to=complaint)

    result = source.fetch(ACCOUNT, start.cursors)

    posts = {p.external_id: p for p in result.posts}
    assert not posts[complaint["id"]].is_brand
    brand = [p for p in result.posts if p.is_brand]
    assert [(p.is_retweet, p.in_reply_to_external_id) for p in brand] == [
        (False, None),
        (True, None),
        (False, complaint["id"]),
    ]
    assert result.cursors["statuses_min_id"] == answer["id"]
    assert [t[0] for t in result.cursors["threads"]] == [complaint["id"]]


def test_a_reply_deeper_in_an_answered_thread_is_found_in_its_context(api, ann, source) -> None:
    complaint = api.post(ann, "@AcmeCare my order never came")
    api.post(api.brand, "@ann@other.social so sorry, which order?", in_reply_to=complaint)
    first = source.fetch(ACCOUNT, {})
    bob = api.account("bob", followers=5)
    follow_up = api.post(ann, "it is order 1234", in_reply_to=complaint)  # no mention
    me_too = api.post(bob, "same here, nothing arrived", in_reply_to=follow_up)
    api.post(bob, "a private aside", in_reply_to=complaint, visibility="direct")

    second = source.fetch(ACCOUNT, first.cursors)

    found = {p.external_id: p for p in second.posts}
    assert set(found) >= {follow_up["id"], me_too["id"]}
    assert found[follow_up["id"]].in_reply_to_external_id == complaint["id"]
    assert found[me_too["id"]].author_handle == "bob"
    assert all(p.text != "a private aside" for p in second.posts)  # not visible to the brand


def test_every_thread_answered_in_two_days_is_watched_and_read_in_turn_beyond_fifty(
    api, ann, source
) -> None:
    cursors = source.fetch(ACCOUNT, {}).cursors
    complaints = [api.post(ann, f"@AcmeCare order {i} never came") for i in range(55)]
    for i, complaint in enumerate(complaints):
        api.post(api.brand, f"@ann@other.social sorry about order {i}", in_reply_to=complaint)
    answered = source.fetch(ACCOUNT, cursors)
    oldest = complaints[0]
    follow_up = api.post(ann, "still nothing for order 0", in_reply_to=oldest)  # no mention

    found: list[IncomingPost] = []
    polls, cursors = 0, answered.cursors
    while not found and polls < 4:
        result = source.fetch(ACCOUNT, cursors)
        cursors, polls = result.cursors, polls + 1
        found = [p for p in result.posts if p.external_id == follow_up["id"]]
        assert result.notes == []

    assert found and found[0].in_reply_to_external_id == oldest["id"]
    assert {t[0] for t in cursors["threads"]} == {c["id"] for c in complaints}


def test_threads_dropped_from_the_watch_are_logged_and_reported(
    api, ann, source, monkeypatch, caplog
) -> None:
    monkeypatch.setattr("socialcare.sources.mastodon_threads.MAX_THREADS_WATCHED", 3)
    cursors = source.fetch(ACCOUNT, {}).cursors
    complaints = [api.post(ann, f"@AcmeCare order {i} never came") for i in range(5)]
    for i, complaint in enumerate(complaints):
        at = datetime.now(UTC) - timedelta(hours=10 - i)  # the first answered is the first to go
        api.post(api.brand, f"sorry about order {i}", in_reply_to=complaint, at=at)

    result = source.fetch(ACCOUNT, cursors)

    assert {t[0] for t in result.cursors["threads"]} == {c["id"] for c in complaints[2:]}
    (note,) = result.notes
    assert (note.kind, note.severity, note.data["dropped"]) == ("threads_dropped", "warning", 2)
    assert note.data["status_ids"] == [complaints[0]["id"], complaints[1]["id"]]
    assert "2 answered thread(s) dropped" in caplog.text


def test_a_failing_thread_check_keeps_the_thread_and_never_fails_the_poll(api, ann, source) -> None:
    complaint = api.post(ann, "@AcmeCare my order never came")
    api.post(api.brand, "@ann@other.social sorry!", in_reply_to=complaint)
    cursors = source.fetch(ACCOUNT, {}).cursors
    api.post(ann, "@AcmeCare any news?")
    api.fail("context", "503")

    result = source.fetch(ACCOUNT, cursors)

    assert [p.text for p in result.posts] == ["@AcmeCare any news?"]
    assert [t[0] for t in result.cursors["threads"]] == [complaint["id"]]


def test_a_watched_thread_whose_post_was_deleted_is_dropped(api, ann, source) -> None:
    complaint = api.post(ann, "@AcmeCare my order never came")
    api.post(api.brand, "@ann@other.social sorry!", in_reply_to=complaint)
    cursors = source.fetch(ACCOUNT, {}).cursors
    api.delete(complaint)

    result = source.fetch(ACCOUNT, cursors)

    assert result.cursors["threads"] == []


def test_a_thread_is_watched_only_for_two_days_after_the_brands_answer(api, ann, source) -> None:
    old = datetime.now(UTC) - timedelta(days=3)
    complaint = api.post(ann, "@AcmeCare my order never came", at=old)
    api.post(api.brand, "@ann@other.social sorry!", in_reply_to=complaint, at=old)

    result = source.fetch(ACCOUNT, {})

    assert result.cursors["threads"] == []
    assert api.requests["context"] == 0


# -- text --------------------------------------------------------------------------------


def test_html_content_arrives_as_the_plain_text_its_author_wrote(api, ann, source) -> None:
    api.post(ann, '@AcmeCare 5 < 6 & "quotes"\nsecond line\n\nnew paragraph', spoiler="rant")
    hostile = (
        '<p>@AcmeCare <script>alert("x")</script><style>p{}</style>'
        '<a href="javascript:alert(1)">click</a> &amp;lt;b&amp;gt; '
        "nul\x00here \ud800 <b>bold<i>unclosed</p><div><p>more"
    )
    api.post(ann, "@AcmeCare", html_content=hostile)

    texts = [p.text for p in source.fetch(ACCOUNT, {}).posts]

    assert texts[0] == 'CW: rant\n\n@AcmeCare 5 < 6 & "quotes"\nsecond line\n\nnew paragraph'
    assert texts[1] == "@AcmeCare click &lt;b&gt; nulhere boldunclosed\n\nmore"


def test_a_huge_or_deeply_nested_body_is_bounded_and_never_fails_the_parse() -> None:
    nested = "<div>" * 50_000 + "deep" + "</div>" * 50_000
    huge = "<p>" + "a" * 500_000 + "</p>"

    assert html_to_text(nested) == ""  # past MAX_HTML: the text is not reached
    assert len(html_to_text(huge)) == MAX_HTML - len("<p>")
    assert html_to_text("<p>unterminated <a href='x") == "unterminated"
    assert html_to_text(None) == "" and html_to_text(["<p>"]) == ""


# -- faults ----------------------------------------------------------------------------------


def test_a_429_raises_rate_limited_until_the_reset_time(api, source) -> None:
    api.fail("notifications", "429")

    with pytest.raises(RateLimited) as caught:
        source.fetch(ACCOUNT, {"account_id": "1"})

    retry = caught.value.retry_after
    assert retry is not None
    assert timedelta(seconds=100) < retry - datetime.now(UTC) < timedelta(seconds=121)


def test_a_poll_reports_the_rate_window_its_last_answer_gave(api, source) -> None:
    api.rate_limit = 40

    result = source.fetch(ACCOUNT, {})

    window = result.rate_windows["api"]  # one limit for every request of the token
    assert (window.limit, window.remaining) == (40, 40 - result.requests_made)
    assert timedelta(seconds=290) < window.reset_at - datetime.now(UTC) <= timedelta(seconds=300)


def test_a_spent_budget_asks_for_the_next_poll_at_the_reset(api, source) -> None:
    api.rate_limit = 2  # the notifications request uses the last one

    result = source.fetch(ACCOUNT, {"account_id": "1", "statuses_min_id": "1"})

    assert result.next_poll_in is not None and 250 < result.next_poll_in <= 300


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("500", "HTTP 500"),
        ("503", "HTTP 503"),
        ("slow", "Timeout"),
        ("drop", "ConnectionError"),
        ("malformed", "not valid JSON"),
    ],
)
def test_server_errors_timeouts_and_malformed_answers_are_transient_errors_naming_the_call(
    api, ann, source, fault, words
) -> None:
    api.post(ann, "@AcmeCare secret complaint text")
    api.fail("notifications", fault)

    with pytest.raises(SourceError) as caught:
        source.fetch(ACCOUNT, {"account_id": "1", "notifications_min_id": "1"})

    assert not caught.value.permanent and not isinstance(caught.value, RateLimited)
    message = str(caught.value)
    assert "notifications of @AcmeCare" in message and words in message
    assert "secret complaint" not in message


def test_a_rejected_token_is_a_permanent_error(api) -> None:
    source = make_source(api, MASTODON_ACCESS_TOKEN="revoked")

    with pytest.raises(SourceError) as caught:
        source.fetch(ACCOUNT, {})

    assert caught.value.permanent and caught.value.status == 401


def test_a_token_of_another_account_is_refused(api, source) -> None:
    with pytest.raises(SourceError) as caught:
        source.fetch(AccountRef(id=2, platform="mastodon", handle="OtherBrand"), {})

    assert caught.value.permanent and "belongs to @AcmeCare" in str(caught.value)


def test_missing_credentials_name_the_variables(api) -> None:
    source = make_source(api, MASTODON_ACCESS_TOKEN="")

    with pytest.raises(SourceError, match="MASTODON_ACCESS_TOKEN") as caught:
        source.fetch(ACCOUNT, {})

    assert caught.value.permanent
    assert api.requests.total() == 0
