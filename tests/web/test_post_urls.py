"""A sent reply's public page in the API and on the case page, and the digest's post pages, for
every platform, from posts stored as the sources store them (both databases)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from socialcare.config import Settings
from socialcare.metrics.digest import build_digest
from socialcare.posts.models import Account
from socialcare.sources.bluesky_parse import record_post
from socialcare.sources.mastodon_parse import status_to_post
from socialcare.web import create_app
from tests.factories import T0, make_account, make_case, make_post, make_reply
from tests.web.signin import sign_in

DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
NOW = T0 + timedelta(hours=2)


@pytest.fixture
def client(settings: Settings, engine: object, session: Session) -> Iterator[TestClient]:
    with TestClient(create_app(settings, clock=lambda: NOW)) as c:
        sign_in(c, session, "lead", "lead")
        yield c


def _sent_case(
    session: Session, account: Account, reply_id: str, *, stored: dict[str, Any] | None = None
) -> int:
    """A case whose reply was sent as reply_id; stored: the reply's post as the source kept it."""
    root = make_post(session, account, "where is my parcel?")
    case = make_case(session, account, root, status="responded")
    make_reply(session, case, state="sent", external_id=reply_id, sent_at=T0 + timedelta(minutes=3))
    if stored is not None:
        make_post(
            session,
            account,
            "Sorry!",
            is_brand=True,
            in_reply_to=root,
            created_at=T0 + timedelta(minutes=3),
            **stored,
        )
    session.commit()
    return case.id


def _shown(client: TestClient, case_id: int) -> tuple[str | None, str]:
    [reply] = client.get(f"/api/cases/{case_id}").json()["replies"]
    return reply["url"], client.get(f"/cases/{case_id}").text


def test_a_bluesky_reply_links_to_its_post(client: TestClient, session: Session) -> None:
    account = make_account(
        session, "acme.bsky.social", platform="bluesky", source="bluesky", external_id=DID
    )
    sent = record_post(
        {
            "uri": f"at://{DID}/app.bsky.feed.post/3lbqv7d6k2c2a",
            "cid": "bafyreib2rxk3rh6kzwq",
            "author": {"did": DID, "handle": "acme.bsky.social"},
            "record": {"$type": "app.bsky.feed.post", "text": "Sorry!", "createdAt": "2024-05-01"},
            "indexedAt": "2024-05-01T12:03:00Z",
        },
        DID,
    )
    case_id = _sent_case(session, account, sent.external_id)
    url, page = _shown(client, case_id)
    assert url == f"https://bsky.app/profile/{DID}/post/3lbqv7d6k2c2a"
    assert f'href="{url}" rel="noopener noreferrer">public post</a>' in page


def test_a_mastodon_reply_links_to_the_page_its_server_gave(
    client: TestClient, session: Session
) -> None:
    account = make_account(session, "brand", platform="mastodon", source="mastodon")
    status = {
        "id": "113000000000000001",
        "created_at": "2024-05-01T12:03:00.000Z",
        "content": "<p>Sorry!</p>",
        "url": "https://social.example/@brand/113000000000000001",
        "uri": "https://social.example/users/brand/statuses/113000000000000001",
        "account": {"id": "7", "acct": "brand"},
    }
    sent = status_to_post(status, "7")
    case_id = _sent_case(
        session,
        account,
        sent.external_id,
        stored={"external_id": sent.external_id, "raw": sent.raw},
    )
    url, page = _shown(client, case_id)
    assert url == "https://social.example/@brand/113000000000000001"
    assert f'href="{url}"' in page

    # A status stored without its url: the brand's server (named by its uri) shows it.
    bare = status_to_post({**status, "id": "113000000000000002", "url": None}, "7")
    case_id = _sent_case(
        session,
        account,
        bare.external_id,
        stored={"external_id": bare.external_id, "raw": bare.raw},
    )
    url, page = _shown(client, case_id)
    assert url == "https://social.example/@brand/113000000000000002"
    assert f'href="{url}"' in page


def test_a_mastodon_reply_never_links_to_what_a_server_calls_a_url(
    client: TestClient, session: Session
) -> None:
    account = make_account(session, "brand", platform="mastodon", source="mastodon")
    raw = {"url": "javascript:alert(1)", "uri": "javascript:alert(2)"}
    case_id = _sent_case(session, account, "55", stored={"external_id": "55", "raw": raw})
    url, page = _shown(client, case_id)
    assert url is None
    assert "javascript:" not in page and "public post" not in page


def test_x_and_twcs_replies_link_to_x(client: TestClient, session: Session) -> None:
    x = make_account(session, "AcmeCare", platform="x", source="x")
    url, page = _shown(client, _sent_case(session, x, "1850000000000000001"))
    assert url == "https://x.com/AcmeCare/status/1850000000000000001"
    assert f'href="{url}"' in page
    twcs = make_account(session, "AppleSupport", platform="twcs", source="replay")
    url, _ = _shown(client, _sent_case(session, twcs, "119237"))
    assert url == "https://x.com/AppleSupport/status/119237"
    url, page = _shown(client, _sent_case(session, twcs, "r0123456789abcdef"))
    assert url is None, "a replayed reply was never on X"
    assert "public post" not in page


def test_the_digest_links_each_waiting_post_to_its_page(
    settings: Settings, session: Session
) -> None:
    day = T0.replace(hour=10)
    bsky = make_account(session, "acme.bsky.social", platform="bluesky", source="bluesky")
    masto = make_account(session, "brand", platform="mastodon", source="mastodon")
    given = make_post(
        session,
        masto,
        created_at=day,
        author_handle="carol@other.example",
        external_id="9001",
        raw={"url": "https://other.example/@carol/42"},
    )
    bare = make_post(
        session, masto, created_at=day, author_handle="dan", external_id="9002", raw={}
    )
    blue = make_post(session, bsky, created_at=day, external_id=f"{DID}/3lbqv7d6k2c2c")
    for post, account in ((given, masto), (bare, masto), (blue, bsky)):
        make_case(session, account, post)
    session.commit()
    cfg = settings.model_copy(update={"mastodon_api_base_url": "https://social.example"})
    digest = build_digest(session=session, settings=cfg, period="day", now=T0 + timedelta(days=1))
    assert sorted(w.url or "" for w in digest.worst_waits) == [
        f"https://bsky.app/profile/{DID}/post/3lbqv7d6k2c2c",
        "https://other.example/@carol/42",
        "https://social.example/@dan/9002",
    ]
