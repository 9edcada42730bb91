"""The Mastodon source against an independent Mastodon API server (mastodon_mock, see
conftest.py): an empty first poll, more than fifty answered threads, a reply whose answer is
lost after the server made it, and a server that renders markup."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from socialcare.errors import ReplyOutcomeUnknown
from socialcare.sources.base import IncomingPost
from socialcare.sources.mastodon import NOTHING_BEFORE
from tests.sources.mastodon_server.conftest import LoseAnswers, fault, make_source


def test_mentions_after_an_empty_first_poll_are_all_read_through_every_page(
    ann, brand, source, account
) -> None:
    first = source.fetch(account, {})
    mentions = [ann.status_post(f"@AcmeCare complaint {i}") for i in range(45)]

    second = source.fetch(account, first.cursors)
    third = source.fetch(account, second.cursors)

    assert first.posts == []
    assert first.cursors["notifications_min_id"] == NOTHING_BEFORE
    assert [p.external_id for p in second.posts] == [str(m["id"]) for m in mentions]
    assert [p.text for p in second.posts][:2] == ["@AcmeCare complaint 0", "@AcmeCare complaint 1"]
    assert third.posts == []
    assert second.rate_windows["api"].limit == 100_000  # the server's X-RateLimit-* were read


def test_a_follow_up_in_the_oldest_of_more_than_fifty_answered_threads_is_read(
    ann, brand, source, account
) -> None:
    cursors = source.fetch(account, {}).cursors
    complaints = [ann.status_post(f"@AcmeCare order {i} never came") for i in range(55)]
    for i, complaint in enumerate(complaints):
        brand.status_post(f"@ann sorry about order {i}", in_reply_to_id=complaint["id"])
    cursors = source.fetch(account, cursors).cursors
    assert len(cursors["threads"]) == 55
    oldest = complaints[0]
    follow_up = ann.status_post("still nothing for order 0", in_reply_to_id=oldest["id"])
    mentions = brand.notifications(types=["mention"], limit=80)
    assert all(n["status"]["id"] != follow_up["id"] for n in mentions)  # only the thread has it

    found: list[IncomingPost] = []
    polls = 0
    while not found and polls < 12:
        result = source.fetch(account, cursors)
        cursors, polls = result.cursors, polls + 1
        found = [p for p in result.posts if p.external_id == str(follow_up["id"])]

    assert found and found[0].in_reply_to_external_id == str(oldest["id"])
    assert {t[0] for t in cursors["threads"]} == {str(c["id"]) for c in complaints}


def _replies_to(brand, status_id: str) -> list[dict]:
    context = brand.status_context(status_id)
    return [s for s in context["descendants"] if str(s["in_reply_to_id"]) == status_id]


def test_a_reply_rendered_as_markup_whose_answer_is_lost_is_found_and_never_posted_twice(
    mock, ann, brand, account
) -> None:
    source = make_source(mock)
    lost = LoseAnswers()
    source.session.mount(mock.base_url, lost)
    post = ann.status_post("@AcmeCare where is my parcel?")
    target = str(post["id"])
    text = "**Sorry!** It ships today."
    began = datetime.now(UTC)
    lost.lose = 1  # the server makes the status; its answer never arrives
    with pytest.raises(ReplyOutcomeUnknown):
        source.send_reply(account, in_reply_to=target, text=text)
    (made,) = _replies_to(brand, target)
    assert "<strong>Sorry!</strong>" in made["content"]

    found = source.find_reply(account, in_reply_to=target, text=text, sent_after=began)
    again = source.send_reply(account, in_reply_to=target, text=text)  # the Idempotency-Key

    assert found is not None and found.external_id == str(made["id"])
    assert found.post.text != text  # the server's rendering: text could not have matched it
    assert source.find_reply(account, in_reply_to=target, text=text) is None
    assert again.external_id == str(made["id"])
    assert len(_replies_to(brand, target)) == 1


def test_a_reply_the_server_refused_is_confirmed_absent(mock, ann, brand, source, account) -> None:
    post = ann.status_post("@AcmeCare hello?")
    target = str(post["id"])
    fault(mock, match={"methods": ["POST"], "path": "/api/v1/statuses"}, effect={"status": 503})
    began = datetime.now(UTC)
    with pytest.raises(ReplyOutcomeUnknown):
        source.send_reply(account, in_reply_to=target, text="Hi!")

    assert source.find_reply(account, in_reply_to=target, text="Hi!", sent_after=began) is None
    assert _replies_to(brand, target) == []
