"""How the Mastodon source talks to the API: a session whose every request has a timeout,
Mastodon.py's failures as SourceError, the Idempotency-Key and the shape of a reply."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

import requests
from mastodon import MastodonNetworkError, MastodonRatelimitError
from mastodon.errors import MastodonAPIError
from urllib3.exceptions import NewConnectionError

from socialcare.errors import RateLimited, ReplyOutcomeUnknown, SourceError
from socialcare.sources.base import AccountRef
from socialcare.sources.mastodon_parse import mentioned, reply_visibility, reset_time


class TimeoutSession(requests.Session):
    """A session that gives every request a timeout and keeps the last response's headers."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout
        self.last_headers: Mapping[str, str] = {}
        self.last_status: int | None = None

    def request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        self.last_headers, self.last_status = {}, None
        response = super().request(method, url, *args, **kwargs)
        self.last_headers, self.last_status = response.headers, response.status_code
        return response


def idempotency_key(account: AccountRef, in_reply_to: str, text: str) -> str:
    """The same reply (account, post answered, text) always gets the same key, so a POST retried
    within the server's idempotency window (an hour on Mastodon) returns the status first made."""
    digest = hashlib.sha256(f"{account.id}\n{in_reply_to}\n{text}".encode()).hexdigest()
    return f"socialcare-{digest[:40]}"


def _not_sent(exc: BaseException | None) -> bool:
    """True when no connection was made, so a POST cannot have reached the server."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return isinstance(reason, NewConnectionError)
    return False


def as_source_error(
    action: str, exc: Exception, session: TimeoutSession, *, sending: bool
) -> SourceError:
    """A Mastodon.py failure as the SourceError the caller handles (never its texts: a
    malformed answer's body is in the library's message, and posts must not reach the logs)."""
    unknown = "; the reply may have been published"
    headers = session.last_headers
    if isinstance(exc, MastodonRatelimitError) and session.last_status not in (None, 429):
        # Mastodon.py raises this too when a successful answer's reset header is unreadable.
        message = f"Mastodon {action} failed: unreadable rate-limit headers (reset, date)"
        return ReplyOutcomeUnknown(message + unknown) if sending else SourceError(message)
    if isinstance(exc, MastodonRatelimitError):
        retry_after = reset_time(headers)
        message = f"Mastodon {action} failed: HTTP 429 rate limited"
        if retry_after is not None:
            message += f"; retry after {retry_after.isoformat()}"
        return RateLimited(message, retry_after=retry_after, status=429)
    if isinstance(exc, MastodonNetworkError):
        cause = exc.__context__
        message = f"Mastodon {action} failed: {type(cause or exc).__name__}"
        if sending and not _not_sent(cause):
            return ReplyOutcomeUnknown(message + unknown)
        return SourceError(message)
    args = exc.args
    status = args[1] if len(args) > 2 and isinstance(args[1], int) else None
    if status is None:
        if isinstance(exc, MastodonAPIError) and isinstance(exc.__context__, ValueError):
            # Not JSON (truncated, an HTML error page): Mastodon.py puts the body in its
            # message, so only the fact is kept.
            what = f"the answer (HTTP {session.last_status}) is not valid JSON"
        else:
            what = f"unreadable answer ({type(exc).__name__})"
        message = f"Mastodon {action} failed: {what}"
        if sending:
            return ReplyOutcomeUnknown(message + unknown)
        return SourceError(message)
    detail = args[3] if len(args) > 3 and isinstance(args[3], str) else ""
    message = f"Mastodon {action} failed: HTTP {status} {args[2] or ''}".rstrip()
    message += f" ({detail[:200]})" if detail else ""
    if status >= 500:
        if sending:
            return ReplyOutcomeUnknown(message + unknown, status=status)
        return SourceError(message, status=status)
    if status in (408, 409, 425):
        return SourceError(message, status=status)
    return SourceError(message, permanent=True, status=status)


def reply_plan(
    text: str, target: Mapping[str, Any], *, brand_id: str, brand_handle: str
) -> tuple[str, str]:
    """The status text and visibility of a reply to target.

    The author is mentioned first unless the text does (Mastodon delivers a direct status only
    to the accounts it mentions, and notifies only mentions). A direct reply that would mention
    anyone else would show them the conversation: refused, permanently.
    """
    visibility = reply_visibility(target.get("visibility"))
    author = target.get("account")
    author = author if isinstance(author, Mapping) else {}
    acct = author.get("acct")
    acct = acct if isinstance(acct, str) else ""
    body = text
    username = acct.split("@", 1)[0]
    if "@" in acct and username:
        # "@ann" for ann@other.social would name a local ann, or nobody: use the full address.
        bare = re.compile(rf"(?<![\w/@])@{re.escape(username)}(?![\w@])", re.IGNORECASE)
        body = bare.sub(lambda _: f"@{acct}", body)
    if acct and str(author.get("id")) != brand_id and acct.lower() not in mentioned(body):
        body = f"@{acct} {body}"
    if visibility == "direct":
        others = mentioned(body) - {acct.lower(), brand_handle.lstrip("@").lower()}
        if others:
            raise SourceError(
                f"a reply to a {str(target.get('visibility'))[:20]} post goes out as a direct "
                f"message and may mention only its author; this one also mentions {len(others)} "
                "other account(s)",
                permanent=True,
            )
    return body, visibility
