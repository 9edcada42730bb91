"""A post's public address, built in one place for every source.

Each source stores a post's id its own way (see the ``*_parse`` modules):

- X, and TWCS files and their replay (the same API's ids): the tweet id, digits. Its page is
  ``https://x.com/{handle}/status/{id}`` (``/i/status/{id}`` when the handle is unknown). A
  replayed reply's made-up id (``r`` and a hash) was never on X and has no page.
- Mastodon: the status's id on the brand's server. The server gives each status its public
  page as ``url`` (kept in the post's raw payload); without it, the server's own
  ``/@{acct}/{id}`` shows the status (a remote author's acct carries its domain).
- Bluesky: ``did/rkey`` for a post (``did/collection/rkey`` for another record, ``h:...`` for
  an id too long to keep); its page is ``https://bsky.app/profile/{did}/post/{rkey}``.

Everything here comes from a post or a server, so it is checked: only http(s) addresses are
returned, and names are percent-encoded into the path.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlsplit

from socialcare.sources.bluesky_parse import POST as BLUESKY_POST
from socialcare.sources.bluesky_parse import post_uri

X_FORM = frozenset({"x", "twcs"})


def web_address(value: object) -> str | None:
    """value when it is an absolute http(s) address with a host and nothing odd in it (a
    server's answer is untrusted: no ``javascript:``, no spaces or control characters)."""
    if not isinstance(value, str) or not 0 < len(value) <= 2048:
        return None
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return value


def _segment(name: str) -> str:
    return quote(name, safe="@.:")


def _x(platform: str, external_id: str, handle: str | None) -> str | None:
    if platform != "x" and not (external_id.isascii() and external_id.isdigit()):
        return None  # a replayed reply's made-up id
    who = handle.lstrip("@") if handle else ""
    return f"https://x.com/{_segment(who) if who else 'i'}/status/{quote(external_id, safe='')}"


def _mastodon(
    external_id: str, handle: str | None, raw: Mapping[str, object] | None, server: str
) -> str | None:
    given = web_address(raw.get("url")) if raw else None
    if given is not None:
        return given
    base = web_address(server.rstrip("/")) if server else None
    who = handle.lstrip("@") if handle else ""
    if base is None or not who:
        return None
    return f"{base}/@{_segment(who)}/{quote(external_id, safe='')}"


def _bluesky(external_id: str, raw: Mapping[str, object] | None) -> str | None:
    uri = post_uri(external_id)
    if uri is None and raw is not None and isinstance(raw.get("uri"), str):
        uri = str(raw["uri"])  # an id kept as a hash: the record's own address
    if uri is None or not uri.startswith("at://"):
        return None
    parts = uri[len("at://") :].split("/")
    if len(parts) != 3 or parts[1] != BLUESKY_POST or not parts[0] or not parts[2]:
        return None
    did, _, rkey = parts
    return f"https://bsky.app/profile/{_segment(did)}/post/{quote(rkey, safe='')}"


def post_url(
    platform: str,
    external_id: str | None,
    *,
    handle: str | None = None,
    raw: Mapping[str, object] | None = None,
    server: str = "",
) -> str | None:
    """The public page of a post, or None where the platform has none for it.

    handle is the author's handle (X and Mastodon need it; Bluesky's id names its author),
    raw the post's stored payload (Mastodon's ``url``), server the Mastodon server's address
    (MASTODON_API_BASE_URL) for a status whose url is not stored."""
    if not external_id:
        return None
    if platform in X_FORM:
        return _x(platform, external_id, handle)
    if platform == "mastodon":
        return _mastodon(external_id, handle, raw, server)
    if platform == "bluesky":
        return _bluesky(external_id, raw)
    return None
