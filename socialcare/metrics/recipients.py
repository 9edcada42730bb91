"""Parsing of the digest delivery settings: recipients and the SMTP URL (pure, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

RECIPIENT_KINDS = ("email", "slack")
RECIPIENTS_EXAMPLE = "email:lead@example.com@Europe/London,slack:#care@America/New_York"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class Recipient:
    """Where one digest goes: 'email' or 'slack', the address or channel, its IANA time zone."""

    kind: str
    address: str
    tz: str = "UTC"


def _is_zone(name: str) -> bool:
    if not name or name.startswith("/") or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _recipient(item: str) -> Recipient:
    kind, sep, rest = item.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in RECIPIENT_KINDS:
        raise ValueError(f"{item!r}: start with email: or slack:, e.g. {RECIPIENTS_EXAMPLE}")
    address, at, tz = rest.strip().rpartition("@")
    if not at or not _is_zone(tz):
        # No time zone given: the whole rest is the address (an email's own @ is not a zone).
        address, tz = rest.strip(), "UTC"
        if at and "/" in rest.rpartition("@")[2]:
            raise ValueError(f"{item!r}: unknown time zone {rest.rpartition('@')[2]!r}")
    if not address or any(c.isspace() or c in "<>\"'" for c in address):
        raise ValueError(f"{item!r}: empty or malformed address")
    if kind == "email":
        local, _, domain = address.partition("@")
        if not local or "." not in domain or "@" in domain:
            raise ValueError(f"{item!r}: {address!r} is not an email address")
    return Recipient(kind=kind, address=address, tz=tz)


def parse_recipients(value: str) -> list[Recipient]:
    """Comma-separated kind:address@tz items; the @tz part is optional and defaults to UTC."""
    items = [item.strip() for item in value.split(",")]
    return [_recipient(item) for item in items if item]


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to submit mail: smtp:// (optionally STARTTLS) or smtps:// (implicit TLS)."""

    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool
    starttls: bool

    def __repr__(self) -> str:  # the password never reaches a log line
        user = self.username or ""
        return (
            f"SmtpConfig({user}@{self.host}:{self.port}, tls={self.implicit_tls or self.starttls})"
        )


def parse_smtp_url(url: str) -> SmtpConfig:
    """smtp://user:pass@host:port?starttls=true or smtps://user:pass@host:port."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps"):
        raise ValueError("an smtp:// or smtps:// URL, e.g. smtp://user:pass@host:587?starttls=true")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port must be a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError("the URL names no host")
    query = {k.lower(): v[-1].strip().lower() for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"starttls"}
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))}; only starttls")
    flag = query.get("starttls", "false")
    if flag not in _TRUE + _FALSE:
        raise ValueError("starttls must be true or false")
    starttls = flag in _TRUE
    implicit_tls = scheme == "smtps"
    if implicit_tls and starttls:
        raise ValueError("smtps:// is already TLS; starttls=true is for smtp://")
    default_port = 465 if implicit_tls else 587 if starttls else 25
    return SmtpConfig(
        host=parts.hostname,
        port=port or default_port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        implicit_tls=implicit_tls,
        starttls=starttls,
    )
