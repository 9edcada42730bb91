"""The HTTP side of the Bluesky source: one logged-in atproto client per process, every request
with a timeout, every failure as a SourceError."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from atproto_client import Client
from atproto_client.exceptions import NetworkError, RequestErrorBase
from atproto_client.models.common import XrpcError
from atproto_client.request import Request, Response
from atproto_core.exceptions import AtProtocolError

from socialcare.config import Settings
from socialcare.errors import RateLimited, ReplyOutcomeUnknown, SourceError
from socialcare.sources.base import (
    RateWindow,
    epoch_time,
    header_count,
    read_window,
    wait_if_spent,
)
from socialcare.sources.budget import AccountBudget

log = logging.getLogger(__name__)

# Errors a PDS answers when the session's tokens have expired or been revoked: log in again.
TOKEN_ERRORS = frozenset({"ExpiredToken", "InvalidToken"})


class LenientRequest(Request):
    """The SDK's HTTP layer, keeping the headers of the last answer (for the rate-limit budget)
    and decoding JSON with the standard library, which, unlike the SDK's decoder, accepts every
    string JSON can carry (a lone surrogate escape would otherwise fail a whole page)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.last_headers: Mapping[str, str] = {}
        self.window: RateWindow | None = None  # the newest rate window an answer gave

    def _parse(self, response: httpx.Response) -> Response:
        headers = {key.lower(): value for key, value in response.headers.items()}
        self.last_headers = headers
        self.window = rate_window(headers, datetime.now(UTC)) or self.window
        content: Any = response.content
        if "application/json" in headers.get("content-type", "").lower():
            content = json.loads(response.content)  # ValueError when truncated or not JSON
        return Response(True, response.status_code, content, headers)

    def get(self, *args: Any, **kwargs: Any) -> Response:
        return self._parse(self._send_request("GET", *args, **kwargs))

    def post(self, *args: Any, **kwargs: Any) -> Response:
        return self._parse(self._send_request("POST", *args, **kwargs))


def reset_time(headers: Mapping[str, str], now: datetime) -> datetime | None:
    """When the rate window reopens: ``ratelimit-reset`` (epoch seconds), else ``retry-after``."""
    reset = epoch_time(headers.get("ratelimit-reset"))
    if reset is not None:
        return reset
    after = header_count(headers.get("retry-after"))
    return None if after is None else now + timedelta(seconds=after)


def rate_window(headers: Mapping[str, str], now: datetime) -> RateWindow | None:
    """ratelimit-limit, -remaining and -reset as a RateWindow; None when absent or unreadable."""
    return read_window(
        headers.get("ratelimit-limit"),
        headers.get("ratelimit-remaining"),
        epoch_time(headers.get("ratelimit-reset")),
    )


def seconds_until_reset(headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds until the window reopens when the answer said no request is left, else None."""
    return wait_if_spent(headers.get("ratelimit-remaining"), reset_time(headers, now), now)


def error_code(exc: BaseException) -> str | None:
    """The XRPC error name of a failed request (``ExpiredToken``...), if the answer had one."""
    response = getattr(exc, "response", None)
    content = getattr(response, "content", None)
    return content.error if isinstance(content, XrpcError) else None


def _not_sent(exc: BaseException) -> bool:
    """True when no connection was made, so a POST cannot have reached the PDS."""
    cause = exc if isinstance(exc, httpx.HTTPError) else exc.__cause__
    return isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout)


def as_source_error(action: str, exc: Exception, *, sending: bool) -> SourceError:
    """An atproto/httpx failure as the SourceError the caller handles.

    sending: the request publishes something, so a failure that may have happened after the
    PDS got it (5xx, timeout, dropped connection, unreadable answer) is a ReplyOutcomeUnknown.
    """
    unknown = "; the reply may have been published"
    response = exc.response if isinstance(exc, RequestErrorBase) else None
    if response is not None:
        status = response.status_code
        message = f"Bluesky {action} failed: HTTP {exc}"
        if status == 429:
            retry_after = reset_time(response.headers, datetime.now(UTC))
            if retry_after is not None:
                message += f"; retry after {retry_after.isoformat()}"
            return RateLimited(message, retry_after=retry_after, status=status)
        if status >= 500 or status == 408:
            if sending:
                return ReplyOutcomeUnknown(message + unknown, status=status)
            return SourceError(message, status=status)
        return SourceError(message, permanent=True, status=status)
    cause = exc.__cause__ if isinstance(exc, NetworkError) and exc.__cause__ else exc
    message = f"Bluesky {action} failed: {type(cause).__name__}: {cause}".rstrip(": ")
    if isinstance(exc, ValueError):
        message = f"Bluesky {action} failed: the answer is not readable JSON ({exc})"
    if sending and not _not_sent(exc):
        return ReplyOutcomeUnknown(message + unknown)
    return SourceError(message)


class Session:
    """One logged-in client for the brand account, reused for every call and logged in again
    when its tokens have expired (the SDK refreshes the access token before it runs out)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.request = LenientRequest(timeout=httpx.Timeout(settings.http_timeout_seconds))
        self.client: Client | None = None
        self.did: str | None = None
        self.logins = 0
        self.rate = AccountBudget(settings, "Bluesky")

    def login(self) -> Client:
        handle = self.settings.bluesky_handle.lstrip("@")
        if not handle or not self.settings.bluesky_app_password:
            raise SourceError(
                "Bluesky credentials missing: set BLUESKY_HANDLE and BLUESKY_APP_PASSWORD",
                permanent=True,
            )
        client = Client(base_url=self.settings.bluesky_service_url, request=self.request)
        try:
            client.login(handle, self.settings.bluesky_app_password, fetch_bsky_profile=False)
        except (AtProtocolError, httpx.HTTPError, ValueError) as exc:
            error = as_source_error(f"login of {handle}", exc, sending=False)
            if isinstance(exc, RequestErrorBase) and error.status in (400, 401):
                error.args = (error.args[0] + " (check BLUESKY_HANDLE and BLUESKY_APP_PASSWORD)",)
            raise error from exc
        session = client._session
        if session is None or not session.did:
            raise SourceError(f"Bluesky login of {handle} gave no session", permanent=True)
        self.client, self.did = client, session.did
        self.logins += 1
        return client

    def call(
        self,
        action: str,
        nsid: str,
        *,
        params: Any = None,
        data: Any = None,
        sending: bool = False,
    ) -> Any:
        """One XRPC call (a procedure when data is given), logged in again once if the PDS says
        the session's tokens expired: it checks them before doing anything, so even a post is
        safe to repeat then. Returns the decoded JSON body. Each call is taken from the
        account's rate budget first (RateLimited, before any request, while it is spent)."""
        self.rate.take(action)
        for attempt in (1, 2):
            client = self.client or self.login()
            try:
                if data is None:
                    response = client.invoke_query(nsid, params=params)
                else:
                    response = client.invoke_procedure(
                        nsid, params=params, data=data, input_encoding="application/json"
                    )
                return response.content
            except (AtProtocolError, httpx.HTTPError, ValueError) as exc:
                if attempt == 1 and error_code(exc) in TOKEN_ERRORS:
                    log.info("Bluesky session expired (%s): logging in again", error_code(exc))
                    self.client = None
                    continue
                raise as_source_error(action, exc, sending=sending) from exc
            finally:
                self.rate.record(self.request.window)
        raise AssertionError("unreachable")

    @property
    def last_headers(self) -> Mapping[str, str]:
        return self.request.last_headers
