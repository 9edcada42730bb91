"""The exception tree: every error socialcare raises on purpose derives from SocialcareError."""

from __future__ import annotations

from datetime import datetime


class SocialcareError(Exception):
    """Base of every deliberate socialcare error."""


class ConfigError(SocialcareError):
    """A setting is missing or invalid; the message names the environment variable."""


class NotFound(SocialcareError):
    """A row asked for by id does not exist."""


class Conflict(SocialcareError):
    """The row is not in the state the action needs (already claimed, already resolved...)."""


class SourceError(SocialcareError):
    """A platform call failed.

    permanent: retrying cannot help (bad credentials, forbidden, malformed request).
    retry_after: when the platform says it may be tried again (rate limits), if known.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        retry_after: datetime | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after
        self.status = status


class RateLimited(SourceError):
    """The platform refused the call until retry_after."""


class ReplyOutcomeUnknown(SourceError):
    """A reply may or may not have been published (timeout after sending): never resend blindly."""


class ModelError(SocialcareError):
    """A scoring model could not be loaded; the message names the setting that chose it."""


class DeliveryError(SocialcareError):
    """A digest could not be delivered (email, Slack).

    permanent: retrying cannot help (rejected address, bad credentials, webhook gone).
    retry_after: seconds the far side asked to wait before trying again, if it said.
    """

    def __init__(self, message: str, *, permanent: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class LoginFailed(SocialcareError):
    """Wrong handle or password, a disabled account, or one locked after repeated failures.

    The message never says which, so a login form does not tell handles apart."""

    def __init__(self, message: str = "wrong handle or password", *, locked: bool = False) -> None:
        super().__init__(message)
        self.locked = locked


class Forbidden(SocialcareError):
    """The person is known but their role does not allow the action."""
