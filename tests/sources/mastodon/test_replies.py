"""Replies through the Mastodon source against the local API stand-in: visibility, mentions,
threading, the Idempotency-Key and reconciliation."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from socialcare.errors import ReplyOutcomeUnknown, SourceError
from tests.sources.mastodon.support import ACCOUNT


@pytest.mark.parametrize(
    ("customer", "reply"),
    [("public", "public"), ("unlisted", "unlisted"), ("private", "direct"), ("direct", "direct")],
)
def test_a_reply_is_never_wider_than_the_post_it_answers(api, ann, source, customer, reply):
    post = api.post(ann, "@AcmeCare my card was charged twice", visibility=customer)

    sent = source.send_reply(ACCOUNT, in_reply_to=post["id"], text="We're refunding it now.")

    (made,) = api.creates
    assert (made.visibility, made.in_reply_to) == (reply, post["id"])
    assert made.text == "@ann@other.social We're refunding it now."  # delivered to the author
    assert sent.post.is_brand and sent.post.in_reply_to_external_id == post["id"]
    assert sent.created_at == datetime.fromisoformat(api.statuses[sent.external_id]["created_at"])


def test_a_remote_customer_named_by_username_alone_is_written_as_their_full_address(
    api, ann, source
) -> None:
    api.account("ann")  # a local namesake who must not receive the answer
    post = api.post(ann, "@AcmeCare my card was charged twice", visibility="direct")

    source.send_reply(ACCOUNT, in_reply_to=post["id"], text="@ann refunded, sorry.")

    (made,) = api.creates
    assert made.text == "@ann@other.social refunded, sorry."
    assert [m["acct"] for m in api.statuses[made.id]["mentions"]] == ["ann@other.social"]


def test_a_direct_reply_that_mentions_anyone_else_is_refused_and_nothing_is_posted(
    api, ann, source
) -> None:
    api.account("carol")
    post = api.post(ann, "@AcmeCare my address is 1 Main St", visibility="direct")

    with pytest.raises(SourceError) as caught:
        source.send_reply(ACCOUNT, in_reply_to=post["id"], text="@carol can you check this?")

    assert caught.value.permanent
    assert api.creates == []


def test_a_reply_whose_answer_is_lost_is_found_and_a_retry_posts_nothing_new(
    api, ann, source
) -> None:
    post = api.post(ann, "@AcmeCare where is my parcel?")
    api.fail("create", "after-slow")

    with pytest.raises(ReplyOutcomeUnknown):
        source.send_reply(ACCOUNT, in_reply_to=post["id"], text="It ships today.")
    found = source.find_reply(ACCOUNT, in_reply_to=post["id"], text="It ships today.")
    again = source.send_reply(ACCOUNT, in_reply_to=post["id"], text="It ships today.")

    assert len(api.creates) == 1
    assert found is not None and found.external_id == again.external_id == api.creates[0].id
    assert api.creates[0].idempotency_key
    assert source.find_reply(ACCOUNT, in_reply_to=post["id"], text="Something else") is None


def test_find_reply_reads_the_brands_statuses_when_the_answered_post_is_gone(
    api, ann, source
) -> None:
    post = api.post(ann, "@AcmeCare where is my parcel?")
    sent = source.send_reply(ACCOUNT, in_reply_to=post["id"], text="It ships today.")
    api.delete(post)

    found = source.find_reply(ACCOUNT, in_reply_to=post["id"], text="It ships today.")

    assert found is not None and found.external_id == sent.external_id


def test_a_reply_to_a_deleted_post_fails_permanently_without_posting(api, ann, source) -> None:
    post = api.post(ann, "@AcmeCare hello")
    api.delete(post)

    with pytest.raises(SourceError) as caught:
        source.send_reply(ACCOUNT, in_reply_to=post["id"], text="Hi!")

    assert caught.value.permanent and caught.value.status == 404
    assert api.creates == []


@pytest.mark.parametrize("fault", ["500", "after-500", "after-drop", "drop"])
def test_a_failed_post_whose_outcome_cannot_be_known_is_reported_as_unknown(
    api, ann, source, fault
) -> None:
    post = api.post(ann, "@AcmeCare hello")
    api.fail("create", fault)

    with pytest.raises(ReplyOutcomeUnknown):
        source.send_reply(ACCOUNT, in_reply_to=post["id"], text="Hi!")


def test_a_reply_the_server_renders_as_markup_is_found_by_its_ids_not_its_text(
    api, ann, source
) -> None:
    api.markdown = True
    post = api.post(ann, "@AcmeCare where is my parcel?")
    api.post(
        api.brand,
        "@ann@other.social **Sorry**, it ships today.",
        in_reply_to=post,
        at=datetime.now(UTC) - timedelta(minutes=30),
    )
    began = datetime.now(UTC)
    api.fail("create", "after-slow")
    with pytest.raises(ReplyOutcomeUnknown):
        source.send_reply(ACCOUNT, in_reply_to=post["id"], text="**Sorry**, it ships today.")
    (made,) = api.creates
    assert "<strong>Sorry</strong>" in api.statuses[made.id]["content"]

    found = source.find_reply(
        ACCOUNT, in_reply_to=post["id"], text="**Sorry**, it ships today.", sent_after=began
    )

    assert found is not None and found.external_id == made.id
    # Not the text sent, and an earlier reply of the brand reads the same: ids and times decide.
    assert found.post.text == "@ann Sorry, it ships today."
    # Known ids are never this attempt's; without the attempt's time only the text counts.
    assert (
        source.find_reply(
            ACCOUNT, in_reply_to=post["id"], text="x", sent_after=began, known={made.id}
        )
        is None
    )
    text_only = source.find_reply(
        ACCOUNT, in_reply_to=post["id"], text="**Sorry**, it ships today."
    )
    assert text_only is None


def test_a_brand_reply_made_before_the_attempt_is_never_taken_for_it(api, ann, source) -> None:
    post = api.post(ann, "@AcmeCare where is my parcel?")
    api.post(
        api.brand,
        "@ann@other.social It ships today.",
        in_reply_to=post,
        at=datetime.now(UTC) - timedelta(minutes=30),
    )
    began = datetime.now(UTC)
    api.fail("create", "500")  # refused: nothing made
    with pytest.raises(ReplyOutcomeUnknown):
        source.send_reply(ACCOUNT, in_reply_to=post["id"], text="It ships today.")

    assert api.creates == []
    assert (
        source.find_reply(ACCOUNT, in_reply_to=post["id"], text="It ships today.", sent_after=began)
        is None
    )


def test_a_retry_within_the_servers_idempotency_hour_returns_the_status_first_made(
    api, ann, source
) -> None:
    post = api.post(ann, "@AcmeCare where is my parcel?")
    api.fail("create", "after-drop")
    with pytest.raises(ReplyOutcomeUnknown):
        source.send_reply(ACCOUNT, in_reply_to=post["id"], text="It ships today.")

    again = source.send_reply(ACCOUNT, in_reply_to=post["id"], text="It ships today.")

    assert [c.id for c in api.creates] == [again.external_id]
    api.forget_idempotency_keys()  # an hour later the server makes a new status
    source.send_reply(ACCOUNT, in_reply_to=post["id"], text="It ships today.")
    assert len(api.creates) == 2


def test_a_reply_with_the_brands_stored_id_asks_no_one_who_the_brand_is(api, ann, source) -> None:
    post = api.post(ann, "@AcmeCare hello")
    account = replace(ACCOUNT, external_id=api.brand["id"])

    source.send_reply(account, in_reply_to=post["id"], text="Hi!")

    assert api.requests["verify_credentials"] == 0
    assert api.requests["create"] == 1
