"""The X API over HTTP: tweepy's client with a timeout on every request (and the rate-limit
headers of the last answer kept), and tweepy's and requests' failures as the SourceError the
poll and the outbox handle."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import requests
import tweepy
from urllib3.exceptions import NewConnectionError

from socialcare.config import Settings
from socialcare.errors import RateLimited, ReplyOutcomeUnknown, SourceError
from socialcare.sources.x_parse import problem_of_body

X_API = "https://api.twitter.com"
X_WINDOW_SECONDS = 900


class TimeoutSession(requests.Session):
    """A session giving every request a default timeout (tweepy sets none); it also keeps the
    headers of the last response, for the rate-limit budget."""

    def __init__(self, timeout: float, base_url: str = X_API) -> None:
        super().__init__()
        self.timeout = timeout
        self.base_url = base_url.rstrip("/")
        self.last_headers: Mapping[str, str] = {}

    def request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        if self.base_url != X_API and isinstance(url, str) and url.startswith(X_API):
            # X_API_BASE_URL: a proxy or a local stand-in of the X API.
            url = self.base_url + url[len(X_API) :]
        response = super().request(method, url, *args, **kwargs)
        self.last_headers = response.headers
        return response

    @classmethod
    def install(cls, client: Any, timeout: float, base_url: str = X_API) -> TimeoutSession:
        """Replace a tweepy client's session by a TimeoutSession with the same settings."""
        old = getattr(client, "session", None)
        if isinstance(old, cls):
            old.timeout = timeout
            old.base_url = base_url.rstrip("/")
            return old
        new = cls(timeout, base_url)
        if isinstance(old, requests.Session):
            for name in requests.Session.__attrs__:
                setattr(new, name, getattr(old, name))
        client.session = new
        return new


def build_client(settings: Settings) -> tweepy.Client:
    """A tweepy client from the settings: bearer token and/or OAuth 1.0a user context."""
    return tweepy.Client(
        bearer_token=settings.x_bearer_token or None,
        consumer_key=settings.x_api_key or None,
        consumer_secret=settings.x_api_secret or None,
        access_token=settings.x_access_token or None,
        access_token_secret=settings.x_access_token_secret or None,
        # The HTTP response as it came: its JSON is parsed once (as_payload, with orjson), the
        # parser reads X's documented shapes directly, and no tweepy.Tweet/User objects are
        # built for a page only to be turned back into dicts.
        return_type=requests.Response,
        wait_on_rate_limit=False,
    )


def _not_sent(exc: requests.RequestException) -> bool:
    """True when no connection was made, so a POST cannot have reached X."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)  # includes NameResolutionError


def as_source_error(action: str, exc: Exception, *, sending: bool) -> SourceError:
    """A tweepy/requests failure as the SourceError the caller handles.

    sending: the request published something, so a failure after it may have reached X
    (5xx, timeout, dropped connection, unreadable answer) is a ReplyOutcomeUnknown.
    """
    unknown = "; the reply may have been published"
    if isinstance(exc, tweepy.HTTPException):
        status = getattr(exc.response, "status_code", None)
        try:
            detail = problem_of_body(exc.response.json())
        except ValueError:
            detail = ""
        detail = detail or "; ".join(str(m) for m in exc.api_messages)
        message = f"X {action} failed: HTTP {status} {getattr(exc.response, 'reason', '') or ''}"
        message = message.rstrip() + (f" ({detail})" if detail else "")
        if isinstance(exc, tweepy.TooManyRequests):
            reset = exc.reset_time
            retry_after = datetime.fromtimestamp(reset, tz=UTC) if reset is not None else None
            if retry_after is not None:
                message += f"; retry after {retry_after.isoformat()}"
            return RateLimited(message, retry_after=retry_after, status=status or 429)
        if isinstance(exc, tweepy.TwitterServerError):
            if sending:
                return ReplyOutcomeUnknown(message + unknown, status=status)
            return SourceError(message, status=status)
        return SourceError(message, permanent=True, status=status)
    message = f"X {action} failed: {type(exc).__name__}: {exc}"
    if sending and not (isinstance(exc, requests.RequestException) and _not_sent(exc)):
        return ReplyOutcomeUnknown(message + unknown)
    return SourceError(message)
