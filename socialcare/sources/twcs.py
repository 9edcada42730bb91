"""Reading TWCS-format CSV files (Customer Support on Twitter) into IncomingPosts.

Files are UTF-8, with or without a byte-order mark. Texts are unescaped as X escaped them (TWCS
came from X's API): `&amp;`, `&lt;` and `&gt;`, once. NUL and bytes that are not UTF-8 become
U+FFFD, as the database would store them, and the rows where that happened are counted, so an
import can say which rows it changed.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from socialcare.errors import SourceError
from socialcare.sources.base import IncomingPost
from socialcare.sources.x_parse import unescape

PLATFORM = "twcs"
COLUMNS = (
    "tweet_id",
    "author_id",
    "inbound",
    "created_at",
    "text",
    "response_tweet_id",
    "in_response_to_tweet_id",
)
MENTION = re.compile(r"@(\w{1,50})")
MAX_TEXT = 20_000
# Tweet ids are unsigned 64-bit numbers: at most 20 decimal digits.
MAX_ID_DIGITS = 20
# Bytes that are not UTF-8 arrive as lone surrogates (errors="surrogateescape"); they and NUL
# (which PostgreSQL cannot store) become U+FFFD.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class TwcsRow:
    tweet_id: str
    author_id: str
    inbound: bool
    created_at: datetime
    text: str
    response_ids: tuple[str, ...]
    in_response_to: str | None
    replaced: bool = False  # NUL or bytes that are not UTF-8 became U+FFFD


@dataclass(frozen=True)
class Loaded:
    """The posts of some files, and the tweet ids of the rows whose bytes were replaced."""

    posts: tuple[IncomingPost, ...]
    replaced: tuple[str, ...]


def _tweet_id(value: str | None) -> str | None:
    """TWCS writes ids as integers or floats ('3.0'); an empty cell is None."""
    value = (value or "").strip()
    if not value:
        return None
    if value.endswith(".0"):
        value = value[:-2]
    # ASCII only: str.isdigit() also accepts digits such as '²' that int() refuses.
    if not (value.isascii() and value.isdigit()) or len(value) > MAX_ID_DIGITS:
        raise ValueError(f"not a tweet id: {value[:40]!r}")
    return value


def _created_at(value: str) -> datetime:
    return datetime.strptime(value.strip(), "%a %b %d %H:%M:%S %z %Y").astimezone(UTC)


def _storable(record: dict[str | None, object]) -> tuple[dict[str, str | None], bool]:
    """The record's cells with NUL and undecodable bytes as U+FFFD, and whether any was."""
    cells: dict[str, str | None] = {}
    replaced = False
    for key, value in record.items():
        if key is None or not (value is None or isinstance(value, str)):
            continue  # the surplus cells of a ragged row (DictReader's restkey)
        if value is not None and _UNSTORABLE.search(value):
            value, replaced = _UNSTORABLE.sub("\ufffd", value), True
        cells[key] = value
    return cells, replaced


def _row(record: dict[str | None, object]) -> TwcsRow:
    """One CSV record as a TwcsRow; ValueError (or TypeError, OverflowError) when malformed."""
    row, replaced = _storable(record)
    tweet_id = _tweet_id(row["tweet_id"])
    if tweet_id is None:
        raise ValueError("empty tweet_id")
    inbound = (row["inbound"] or "").strip().lower()
    if inbound not in ("true", "false"):
        raise ValueError(f"inbound must be True or False, got {inbound[:10]!r}")
    responses = tuple(
        i for i in (_tweet_id(p) for p in (row["response_tweet_id"] or "").split(",")) if i
    )
    return TwcsRow(
        tweet_id=tweet_id,
        author_id=(row["author_id"] or "").strip(),
        inbound=inbound == "true",
        created_at=_created_at(row["created_at"] or ""),
        text=unescape(row["text"] or "")[:MAX_TEXT],
        response_ids=responses,
        in_response_to=_tweet_id(row["in_response_to_tweet_id"]),
        replaced=replaced,
    )


def read_rows(path: Path) -> Iterator[TwcsRow]:
    """Rows of one TWCS file; a malformed row raises SourceError naming the file and line."""
    try:
        # utf-8-sig: a byte-order mark (as spreadsheet programs write) is not part of the header.
        handle = path.open(newline="", encoding="utf-8-sig", errors="surrogateescape")
    except OSError as exc:
        raise SourceError(f"cannot read TWCS file {path}: {exc}", permanent=True) from exc
    with handle:
        reader = csv.DictReader(handle)
        try:
            fields = [_UNSTORABLE.sub("\ufffd", f.strip()) for f in reader.fieldnames or []]
            missing = [c for c in COLUMNS if c not in fields]
            if missing:
                raise SourceError(
                    f"{path}: not a TWCS file, missing columns {', '.join(missing)}",
                    permanent=True,
                )
            # Rows keyed by the stripped names the check above accepted.
            reader.fieldnames = fields
            for record in reader:
                try:
                    row = _row(record)
                except (ValueError, TypeError, KeyError, OverflowError) as exc:
                    raise SourceError(
                        f"{path} line {reader.line_num}: malformed TWCS row: {exc}",
                        permanent=True,
                    ) from None
                yield row
        except csv.Error as exc:
            # e.g. an unclosed quote that runs the rest of the file into one oversized field.
            # DictReader.line_num moves only after a good record: the inner reader's is current.
            hint = " (an unclosed quote?)" if "field limit" in str(exc) else ""
            raise SourceError(
                f"{path} line {reader.reader.line_num}: unreadable CSV: {exc}{hint}",
                permanent=True,
            ) from None


def _brand_of(row: TwcsRow, by_id: dict[str, TwcsRow], brands: dict[str, str]) -> str | None:
    """The brand a row concerns: its author, the brand it answers or that answers it, a mention."""
    seen: set[str] = set()
    current: TwcsRow | None = row
    while current is not None and current.tweet_id not in seen:
        seen.add(current.tweet_id)
        if not current.inbound:
            return current.author_id
        for rid in current.response_ids:
            other = by_id.get(rid)
            if other is not None and not other.inbound:
                return other.author_id
        parent = by_id.get(current.in_response_to or "")
        if parent is not None and not parent.inbound:
            return parent.author_id
        current = parent
    for name in MENTION.findall(row.text):
        if name.lower() in brands:
            return brands[name.lower()]
    # Customer ids in TWCS are anonymised numbers; a brand handle never is.
    mentions = [m for m in MENTION.findall(row.text) if not m.isdigit()]
    return mentions[0] if mentions else None


def to_posts(rows: Iterable[TwcsRow]) -> list[IncomingPost]:
    """IncomingPosts in public-time order, each tagged with the brand it concerns."""
    ordered = sorted(rows, key=lambda r: (r.created_at, int(r.tweet_id)))
    by_id = {r.tweet_id: r for r in ordered}
    brands = {r.author_id.lower(): r.author_id for r in ordered if not r.inbound}
    posts = []
    for r in ordered:
        brand = _brand_of(r, by_id, brands) or "unknown"
        posts.append(
            IncomingPost(
                platform=PLATFORM,
                external_id=r.tweet_id,
                author_external_id=r.author_id,
                author_handle=r.author_id,
                text=r.text,
                created_at=r.created_at,
                is_brand=not r.inbound,
                is_retweet=r.text.startswith("RT @"),
                in_reply_to_external_id=r.in_response_to,
                brand_handle=brand,
            )
        )
    return posts


@functools.lru_cache(maxsize=8)
def _load(paths: tuple[str, ...], mtimes: tuple[float, ...]) -> Loaded:
    rows: list[TwcsRow] = []
    for p in paths:
        rows.extend(read_rows(Path(p)))
    replaced = tuple(r.tweet_id for r in rows if r.replaced)
    return Loaded(posts=tuple(to_posts(rows)), replaced=replaced)


def load(paths: Iterable[Path]) -> Loaded:
    """The files' posts, ordered by public time, and the rows whose bytes were replaced; parsed
    once per process and file version."""
    resolved = tuple(str(Path(p).resolve()) for p in paths)
    try:
        mtimes = tuple(Path(p).stat().st_mtime for p in resolved)
    except OSError as exc:
        raise SourceError(f"cannot read TWCS file: {exc}", permanent=True) from exc
    return _load(resolved, mtimes)


def load_posts(paths: Iterable[Path]) -> tuple[IncomingPost, ...]:
    """All posts of the files, ordered by public time; parsed once per process and file version."""
    return load(paths).posts
