"""The world behind the Mastodon API stand-in (tests/standins/mastodon_api.py): accounts,
statuses as Mastodon renders them (HTML content, mentions as h-card links), the brand's
notifications, and which statuses the brand may see (what Mastodon shows its owner: public and
unlisted posts, and private or direct ones that mention it)."""

from __future__ import annotations

import html
import itertools
import re
import threading
from collections import Counter, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MENTION = re.compile(r"(?<![\w/@])@(\w+(?:@[\w-]+(?:\.[\w-]+)+)?)")
MARKUP = (
    (re.compile(r"\*\*(?!\s)(.+?)(?<!\s)\*\*"), "strong"),
    (re.compile(r"(?<!\*)\*(?!\s)(.+?)(?<!\s)\*(?!\*)"), "em"),
    (re.compile(r"`([^`]+)`"), "code"),
)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Create:
    """One POST /api/v1/statuses carried out (a repeat under a used Idempotency-Key is not)."""

    id: str
    text: str
    in_reply_to: str | None
    visibility: str
    idempotency_key: str | None
    answered: bool


class MastodonWorld:
    """Accounts, statuses and notifications, and the faults scripted for the next requests."""

    def __init__(self, *, brand: str) -> None:
        self.domain = "social.example"
        self._ids = itertools.count(110_000_000_000_000_000, 65_536)
        self._note_ids = itertools.count(1000)
        self.accounts: dict[str, dict[str, Any]] = {}
        self.statuses: dict[str, dict[str, Any]] = {}
        self.notifications: list[dict[str, Any]] = []  # the brand's, oldest first
        self.creates: list[Create] = []
        self._faults: dict[str, deque[str]] = {}
        self._lock = threading.RLock()
        self.markdown = False  # True: **bold**, *italic* and `code` render as markup
        self.brand = self.account(brand, followers=250_000)

    def account(self, username: str, *, domain: str | None = None, followers: int = 10) -> Any:
        account_id = str(len(self.accounts) + 1)
        acct = f"{username}@{domain}" if domain else username
        host = domain or self.domain
        self.accounts[account_id] = {
            "id": account_id,
            "username": username,
            "acct": acct,
            "display_name": username.title(),
            "locked": False,
            "bot": False,
            "created_at": "2022-11-01T00:00:00.000Z",
            "note": "",
            "url": f"https://{host}/@{username}",
            "avatar": f"https://{self.domain}/avatars/{account_id}.png",
            "followers_count": followers,
            "following_count": 3,
            "statuses_count": 12,
            "fields": [],
            "emojis": [],
        }
        return self.accounts[account_id]

    def _by_acct(self, acct: str) -> Any:
        acct = acct.lower().removesuffix(f"@{self.domain}")
        return next((a for a in self.accounts.values() if a["acct"].lower() == acct), None)

    def _plain(self, text: str) -> str:
        """Text between mentions as HTML: escaped, and with markup rendered when markdown."""
        out = html.escape(text)
        if self.markdown:
            for pattern, tag in MARKUP:
                out = pattern.sub(rf"<{tag}>\1</{tag}>", out)
        return out

    def render(self, text: str) -> tuple[str, list[Any]]:
        """Plain text as Mastodon's HTML, and the accounts it mentions."""
        mentions: list[Any] = []
        parts = []
        for paragraph in text.split("\n\n"):
            out, last = [], 0
            for m in MENTION.finditer(paragraph):
                who = self._by_acct(m.group(1))
                if who is None:
                    continue
                mentions.append(who)
                out.append(self._plain(paragraph[last : m.start()]))
                link = f'<a href="{who["url"]}" class="u-url mention">@<span>{who["username"]}'
                out.append(f'<span class="h-card">{link}</span></a></span>')
                last = m.end()
            out.append(self._plain(paragraph[last:]))
            parts.append("<p>" + "".join(out).replace("\n", "<br />") + "</p>")
        return "".join(parts), mentions

    def post(
        self,
        author: Any,
        text: str,
        *,
        visibility: str = "public",
        in_reply_to: Any = None,
        html_content: str | None = None,
        spoiler: str = "",
        reblog_of: Any = None,
        at: datetime | None = None,
    ) -> Any:
        """A status by author (mention notifications for the brand when it mentions it)."""
        content, mentions = self.render(text)
        if html_content is not None:
            content = html_content
            mentions = [self.brand] if f"@{self.brand['username']}" in text else []
        with self._lock:
            status_id = str(next(self._ids))
            created = at or datetime.now(UTC)
            status = {
                "id": status_id,
                "uri": f"https://{self.domain}/users/{author['username']}/statuses/{status_id}",
                "url": f"https://{self.domain}/@{author['username']}/{status_id}",
                "created_at": iso(created),
                "account": author,
                "content": "" if reblog_of else content,
                "visibility": visibility,
                "sensitive": bool(spoiler),
                "spoiler_text": spoiler,
                "in_reply_to_id": in_reply_to["id"] if in_reply_to else None,
                "in_reply_to_account_id": in_reply_to["account"]["id"] if in_reply_to else None,
                "reblog": reblog_of,
                "language": "en",
                "replies_count": 0,
                "reblogs_count": 0,
                "favourites_count": 0,
                "edited_at": None,
                "media_attachments": [],
                "mentions": [
                    {"id": a["id"], "username": a["username"], "url": a["url"], "acct": a["acct"]}
                    for a in mentions
                ],
                "tags": [],
                "emojis": [],
                "card": None,
                "poll": None,
            }
            self.statuses[status_id] = status
            if in_reply_to:
                self.statuses[in_reply_to["id"]]["replies_count"] += 1
            if any(a["id"] == self.brand["id"] for a in mentions) and author is not self.brand:
                self._notify("mention", author, status, created)
        return status

    def favourite(self, who: Any, status: Any) -> None:
        """A favourite of a brand status: a notification that is not a mention."""
        with self._lock:
            status["favourites_count"] += 1
            self._notify("favourite", who, status, datetime.now(UTC))

    def delete(self, status: Any) -> None:
        with self._lock:
            self.statuses.pop(status["id"], None)

    def _notify(self, kind: str, who: Any, status: Any, at: datetime) -> None:
        self.notifications.append(
            {
                "id": str(next(self._note_ids)),
                "type": kind,
                "created_at": iso(at),
                "account": who,
                "status": status,
            }
        )

    def fail(self, endpoint: str, *kinds: str) -> None:
        """The next requests to endpoint fail in these ways, one each, in order."""
        with self._lock:
            self._faults.setdefault(endpoint, deque()).extend(kinds)

    def duplicate_replies(self) -> dict[tuple[str | None, str], int]:
        made = Counter((c.in_reply_to, c.text) for c in self.creates)
        return {key: n for key, n in made.items() if n > 1}

    def _visible(self, status: Any) -> bool:
        """Whether the brand may see status, as Mastodon shows it to its owner."""
        if status["visibility"] in ("public", "unlisted") or status["account"] is self.brand:
            return True
        return any(m["id"] == self.brand["id"] for m in status["mentions"])

    def _descendants(self, root: Any) -> list[Any]:
        below, frontier = [], {root["id"]}
        for status in sorted(self.statuses.values(), key=lambda s: int(s["id"])):
            if status["in_reply_to_id"] in frontier:
                frontier.add(status["id"])
                if self._visible(status):
                    below.append(status)
        return below
