"""Property tests: the TWCS reader, the X JSON parsers and the settings loader never crash.

Whatever bytes or JSON they are given, they either return well-formed values or raise the
project's own error (SourceError, ConfigError) with a message that says where the problem is.
The example-based tests at the end pin the crashes these properties found.
"""

from __future__ import annotations

import csv
import html
import io
import itertools
import logging
import math
import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from socialcare.config import Settings, load_settings
from socialcare.errors import ConfigError, ReplyOutcomeUnknown, SourceError
from socialcare.sources import twcs
from socialcare.sources.base import IncomingPost
from socialcare.sources.x_parse import (
    brand_reply_post,
    comparable_text,
    describe_problems,
    max_id,
    parse_time,
    posts_from_page,
    problem_of_body,
    seconds_until_reset,
    tweet_to_post,
    unescape,
    users_by_id,
)

# Modest example counts (the suite shares its machine); no example database in the work tree.
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        # The only function-scoped fixture used below clears the environment once per test;
        # each example sets and restores its own variables.
        HealthCheck.function_scoped_fixture,
    ],
)

# ---------------------------------------------------------------------------------------------
# Shared strategies
# ---------------------------------------------------------------------------------------------

# Any text a file or an API could carry: every Unicode character except lone surrogates (which
# no UTF-8 file or JSON document can hold), NUL and line breaks of every kind included.
any_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=60)
tricky_text = st.one_of(
    any_text,
    st.sampled_from(
        [
            "",
            '"',
            '""',
            '"unclosed',
            "a,b",
            "line\nbreak",
            "cr\ronly",
            "crlf\r\nend",
            "nul\x00byte",
            "&amp;lt; &lt;b&gt; &#0; &#xD800; &#x110000; &nbsp",
            "\ufeffbom",
            "RT @someone: hi",
            "@AcmeCare help @other",
        ]
    ),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    any_text,
    st.sampled_from([2**64, -1, 10**30, "1" * 25, "²", "١٢٣", "3.0", " 12 ", ""]),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(any_text, st.sampled_from(["id", "text", "data"])), children),
    ),
    max_leaves=12,
)


def rarely(odds: int = 5) -> st.SearchStrategy[bool]:
    """True about one time in odds."""
    return st.sampled_from([False] * (odds - 1) + [True])


def mutated(
    valid: st.SearchStrategy[Any], weird: st.SearchStrategy[Any], odds: int = 5
) -> st.SearchStrategy[Any]:
    """Mostly the well-formed value, about one time in odds anything at all."""
    return rarely(odds).flatmap(lambda odd: weird if odd else valid)


def aware_utc(value: datetime) -> bool:
    return value.tzinfo is not None and value.utcoffset() == timedelta(0)


def is_x_id(value: object) -> bool:
    return isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20


def usable_x_id(value: object) -> bool:
    """An id as X sends it, or as a client that decodes it to a number delivers it."""
    return is_x_id(value) or (type(value) is int and 0 <= value < 2**64)


# ---------------------------------------------------------------------------------------------
# TWCS CSV files
# ---------------------------------------------------------------------------------------------

TWCS_TIME_FORMAT = "%a %b %d %H:%M:%S %z %Y"
VALID_TIME = "Tue Oct 31 22:10:47 +0000 2017"
_file_numbers = itertools.count()

id_cells = mutated(
    st.one_of(
        st.integers(min_value=0, max_value=10**12).map(str),
        st.integers(min_value=0, max_value=10**6).map(lambda i: f"{i}.0"),
    ),
    st.one_of(
        st.sampled_from(
            ["", " 7 ", "abc", "-1", "1e3", "3.5", ".0", "²", "١٢٣", "1" * 25, "9" * 5000]
        ),
        tricky_text,
    ),
    odds=10,
)
inbound_cells = mutated(
    st.sampled_from(["True", "False", "true", " FALSE "]),
    st.one_of(st.sampled_from(["", "yes", "1", "None"]), tricky_text),
    odds=10,
)
time_cells = mutated(
    st.one_of(
        st.just(VALID_TIME),
        st.datetimes(min_value=datetime(1000, 1, 2), timezones=st.timezones()).map(
            lambda d: d.strftime(TWCS_TIME_FORMAT)
        ),
    ),
    st.one_of(
        st.sampled_from(
            [
                "Mon Jan 01 00:30:00 +0100 0001",
                "Fri Dec 31 23:30:00 -0100 9999",
                "Tue Oct 31 22:10:47 2017",
                "2017-10-31T22:10:47Z",
                "Feb 30",
                "",
            ]
        ),
        tricky_text,
    ),
    odds=10,
)
text_cells = mutated(
    tricky_text,
    st.sampled_from(["x" * (twcs.MAX_TEXT + 5), "&amp;" * (twcs.MAX_TEXT // 2), "y" * 140_000]),
    odds=10,
)
response_cells = st.one_of(
    id_cells, st.lists(st.integers(0, 10**9).map(str), max_size=3).map(",".join)
)


@st.composite
def twcs_bodies(draw: st.DrawFn) -> str:
    """A CSV body shaped like TWCS, with any cell, column or line ending possibly wrong."""
    columns = list(twcs.COLUMNS)
    if draw(st.booleans()):
        columns = draw(st.permutations(columns))
    if draw(rarely(10)):
        del columns[draw(st.integers(0, len(columns) - 1))]
    if draw(rarely(10)):
        columns.append(draw(any_text))
    header = [f" {c} " if draw(rarely(10)) else c for c in columns]
    cells = {
        "tweet_id": id_cells,
        "author_id": st.one_of(st.sampled_from(["AcmeCare", "115712", ""]), tricky_text),
        "inbound": inbound_cells,
        "created_at": time_cells,
        "text": text_cells,
        "response_tweet_id": response_cells,
        "in_response_to_tweet_id": id_cells,
    }
    rows = [
        [draw(cells.get(c, tricky_text)) for c in columns] for _ in range(draw(st.integers(0, 4)))
    ]
    for row in rows:  # ragged rows: a cell too few or too many
        if draw(rarely(10)) and row:
            row.pop()
        elif draw(rarely(10)):
            row.append(draw(tricky_text))
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    if not draw(rarely(3)):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator=ending)
        writer.writerow(header)
        writer.writerows(rows)
        return out.getvalue()
    # Joined by hand: quotes, commas and line breaks inside cells break the structure.
    return ending.join(",".join(r) for r in [header, *rows]) + draw(st.sampled_from(["", ending]))


def well_formed_rows() -> st.SearchStrategy[list[dict[str, str]]]:
    row = st.fixed_dictionaries(
        {
            "tweet_id": st.integers(0, 10**15).map(str),
            "author_id": st.sampled_from(["AcmeCare", "115712", "sprintcare"]),
            "inbound": st.sampled_from(["True", "False"]),
            "created_at": st.datetimes(
                min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30)
            ).map(lambda d: d.replace(microsecond=0, tzinfo=UTC).strftime(TWCS_TIME_FORMAT)),
            "text": tricky_text,
            "response_tweet_id": st.just(""),
            "in_response_to_tweet_id": st.one_of(st.just(""), st.integers(0, 10**9).map(str)),
        }
    )
    return st.lists(row, max_size=5, unique_by=lambda r: r["tweet_id"])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("twcs")


def write_file(folder: Path, body: str | bytes) -> Path:
    """A new file per example: the loader caches by path and modification time."""
    path = folder / f"example_{next(_file_numbers)}.csv"
    if isinstance(body, str):
        path.write_text(body, encoding="utf-8", newline="")
    else:
        path.write_bytes(body)
    return path


def check_twcs_posts(posts: tuple[IncomingPost, ...]) -> None:
    for post in posts:
        assert isinstance(post, IncomingPost)
        assert post.platform == twcs.PLATFORM
        assert aware_utc(post.created_at)
        assert len(post.text) <= twcs.MAX_TEXT
        assert post.external_id.isascii() and post.external_id.isdigit()
        reply_to = post.in_reply_to_external_id
        assert reply_to is None or (reply_to.isascii() and reply_to.isdigit())
    times = [p.created_at for p in posts]
    assert times == sorted(times)


@PROPERTY
@given(body=mutated(twcs_bodies(), st.one_of(any_text, st.binary(max_size=200))))
@example(body="tweet_id," * 7 + "\n")
@example(body=",".join(twcs.COLUMNS) + "\n1,a,True," + VALID_TIME + ',"' + "z" * 200_000 + "\n")
def test_loading_any_csv_body_gives_well_formed_posts_or_a_source_error_naming_the_file(
    workdir: Path, body: str | bytes
) -> None:
    path = write_file(workdir, body)
    try:
        posts = twcs.load_posts([path])
    except SourceError as exc:
        event("source error: " + str(exc).split(": ", 1)[-1][:30])
        assert path.name in str(exc)
        assert exc.permanent
    else:
        event("posts" if posts else "no posts")
        check_twcs_posts(posts)


@PROPERTY
@given(body=twcs_bodies())
def test_reading_rows_of_any_csv_body_gives_valid_rows_or_a_source_error_naming_the_file(
    workdir: Path, body: str
) -> None:
    path = write_file(workdir, body)
    rows: list[twcs.TwcsRow] = []
    try:
        rows.extend(twcs.read_rows(path))
    except SourceError as exc:
        assert path.name in str(exc)
    for row in rows:
        assert row.tweet_id.isascii() and row.tweet_id.isdigit()
        assert all(i.isascii() and i.isdigit() for i in row.response_ids)
        assert aware_utc(row.created_at)
        assert len(row.text) <= twcs.MAX_TEXT


# Python 3.11's writer leaves a lone CR unquoted unless CR is in the line terminator, so minimal
# quoting is only well-formed with CRLF endings.
WELL_FORMED_LAYOUTS: list[tuple[str, Literal[0, 1]]] = [
    ("\r\n", csv.QUOTE_MINIMAL),
    ("\r\n", csv.QUOTE_ALL),
    ("\n", csv.QUOTE_ALL),
    ("\r", csv.QUOTE_ALL),
]


@PROPERTY
@given(rows=well_formed_rows(), layout=st.sampled_from(WELL_FORMED_LAYOUTS))
def test_every_well_formed_row_comes_back_with_its_id_unescaped_text_and_utc_time(
    workdir: Path, rows: list[dict[str, str]], layout: tuple[str, Literal[0, 1]]
) -> None:
    ending, quoting = layout
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=twcs.COLUMNS, lineterminator=ending, quoting=quoting)
    writer.writeheader()
    writer.writerows(rows)
    posts = twcs.load_posts([write_file(workdir, out.getvalue())])
    check_twcs_posts(posts)
    by_id = {p.external_id: p for p in posts}
    assert sorted(by_id) == sorted(r["tweet_id"] for r in rows)
    for r in rows:
        post = by_id[r["tweet_id"]]
        assert post.text == unescape(r["text"]).replace("\x00", "\ufffd")[: twcs.MAX_TEXT]
        assert post.created_at == datetime.strptime(r["created_at"], TWCS_TIME_FORMAT)
        assert post.is_brand == (r["inbound"] == "False")
        assert post.in_reply_to_external_id == (r["in_response_to_tweet_id"] or None)


# ---------------------------------------------------------------------------------------------
# X API v2 JSON
# ---------------------------------------------------------------------------------------------

x_ids = st.integers(min_value=0, max_value=2**64 - 1).map(str)
weird_ids = st.one_of(
    st.sampled_from(["", " ", "abc", "-5", "3.0", "²", "١٢٣", "1" * 21, "9" * 5000, "12\x00"]),
    st.integers(),
    json_values,
)
iso_times = st.one_of(
    st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat()),
    st.sampled_from(
        [
            "2024-05-01T12:00:00.000Z",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "2024-13-01T00:00:00Z",
            "yesterday",
        ]
    ),
)


x_users = st.fixed_dictionaries(
    {},
    optional={
        "id": mutated(x_ids, weird_ids),
        "username": mutated(st.from_regex(r"\A\w{1,15}\Z"), json_values),
        "verified": mutated(st.booleans(), json_values),
        "public_metrics": mutated(
            st.fixed_dictionaries(
                {}, optional={"followers_count": mutated(st.integers(0, 10**9), json_values)}
            ),
            json_values,
        ),
    },
)
x_refs = st.lists(
    mutated(
        st.fixed_dictionaries(
            {
                "type": mutated(st.sampled_from(["replied_to", "quoted", "retweeted"]), any_text),
                "id": mutated(x_ids, weird_ids),
            }
        ),
        json_values,
    ),
    max_size=3,
)
x_tweets = st.fixed_dictionaries(
    {"id": mutated(x_ids, weird_ids)},
    optional={
        "text": mutated(tricky_text, json_values),
        "author_id": mutated(x_ids, weird_ids),
        "created_at": mutated(iso_times, json_values),
        "conversation_id": mutated(x_ids, weird_ids),
        "lang": mutated(st.sampled_from(["en", "es", "und"]), json_values),
        "referenced_tweets": mutated(x_refs, json_values),
        "note_tweet": mutated(st.fixed_dictionaries({"text": tricky_text}), json_values),
        "public_metrics": mutated(
            st.dictionaries(st.sampled_from(["like_count", "reply_count"]), st.integers(0, 99)),
            json_values,
        ),
        "edit_history_tweet_ids": json_values,
    },
)
x_pages = st.fixed_dictionaries(
    {"data": mutated(st.lists(mutated(x_tweets, json_values), max_size=4), json_values)},
    optional={
        "includes": mutated(
            st.fixed_dictionaries(
                {}, optional={"users": mutated(st.lists(x_users, max_size=3), json_values)}
            ),
            json_values,
        ),
        "errors": json_values,
        "meta": json_values,
    },
)


def check_x_post(post: IncomingPost) -> None:
    assert isinstance(post, IncomingPost)
    assert post.platform == "x"
    assert is_x_id(post.external_id)
    assert post.author_external_id == "" or is_x_id(post.author_external_id)
    assert isinstance(post.author_handle, str)
    assert isinstance(post.text, str)
    assert aware_utc(post.created_at)
    for ref in (
        post.in_reply_to_external_id,
        post.conversation_external_id,
        post.quoted_external_id,
    ):
        assert ref is None or is_x_id(ref)
    assert post.author_followers is None or type(post.author_followers) is int
    assert type(post.author_verified) is bool
    assert type(post.is_brand) is bool and type(post.is_retweet) is bool
    assert post.lang is None or (isinstance(post.lang, str) and post.lang)
    assert isinstance(post.metrics, dict) and isinstance(post.raw, dict)


@PROPERTY
@given(payload=st.one_of(x_pages, json_values), brand=st.one_of(x_ids, any_text))
def test_any_x_page_gives_well_formed_posts_from_its_data_or_a_source_error(
    payload: Any, brand: str
) -> None:
    try:
        posts = posts_from_page(payload, brand)
    except SourceError as exc:
        event("source error")
        assert str(exc).startswith("X page")
        return
    event("posts" if posts else "no posts")
    data = payload.get("data") or []
    data_ids = {str(t.get("id")) for t in data if isinstance(t, Mapping)}
    assert len(posts) <= len(data)
    for post in posts:
        check_x_post(post)
        assert post.external_id in data_ids
        assert post.is_brand == (post.author_external_id == brand != "")


@PROPERTY
@given(tweet=x_tweets, users=st.lists(x_users, max_size=3), brand=x_ids)
def test_any_x_post_object_gives_a_well_formed_post_or_a_source_error(
    tweet: dict[str, Any], users: list[Any], brand: str
) -> None:
    by_id = users_by_id({"includes": {"users": users}})
    try:
        post = tweet_to_post(tweet, by_id, brand)
    except SourceError as exc:
        assert "X post" in str(exc)
        assert not usable_x_id(tweet.get("id"))
        return
    check_x_post(post)
    assert post.raw == tweet


@PROPERTY
@given(
    post_id=x_ids,
    author=x_ids,
    text=tricky_text,
    created=st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()
    ),
    followers=st.integers(0, 10**9),
)
def test_a_well_formed_x_post_always_parses_with_its_fields_kept(
    post_id: str, author: str, text: str, created: datetime, followers: int
) -> None:
    tweet = {
        "id": post_id,
        "author_id": author,
        "text": x_escape(text),
        "created_at": created.isoformat(),
        "conversation_id": post_id,
        "lang": "en",
    }
    user = {"id": author, "username": "alice", "public_metrics": {"followers_count": followers}}
    post = tweet_to_post(tweet, users_by_id({"includes": {"users": [user]}}), brand_user_id="1")
    check_x_post(post)
    assert post.external_id == post_id
    assert post.text == text
    assert post.created_at == created.astimezone(UTC)
    assert post.author_handle == "alice"
    assert post.author_followers == followers


@PROPERTY
@given(payload=st.one_of(x_pages, st.dictionaries(any_text, json_values)))
def test_expanded_users_are_indexed_by_their_x_id_and_malformed_ones_left_out(
    payload: dict[str, Any],
) -> None:
    users = users_by_id(payload)
    for user_id, user in users.items():
        assert is_x_id(user_id)
        assert isinstance(user, Mapping)
        assert str(user["id"]) == user_id


@PROPERTY
@given(value=st.one_of(iso_times, json_values), post_id=st.one_of(x_ids, weird_ids.map(str)))
def test_parse_time_gives_an_aware_utc_time_or_a_value_error(value: Any, post_id: str) -> None:
    try:
        parsed = parse_time(value, post_id)
    except ValueError as exc:
        assert "created_at" in str(exc)
        assert not is_x_id(post_id)
    else:
        assert aware_utc(parsed)


@PROPERTY
@given(
    moment=st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()
    )
)
def test_parse_time_reads_back_any_iso_time_as_the_same_instant(moment: datetime) -> None:
    assert parse_time(moment.isoformat(), "not an id") == moment.astimezone(UTC)


@PROPERTY
@given(current=json_values, ids=st.lists(st.one_of(x_ids, weird_ids.map(str)), max_size=6))
def test_max_id_is_the_largest_numeric_id_seen_and_ignores_everything_else(
    current: Any, ids: list[str]
) -> None:
    best = max_id(current, ids)
    candidates = [int(i) for i in ids if is_x_id(i)]
    if current and is_x_id(str(current)):
        candidates.append(int(str(current)))
    if not candidates:
        assert best is None
    else:
        assert best == str(max(candidates))


@PROPERTY
@given(problems=json_values)
def test_describing_any_problems_or_error_body_gives_a_line_of_text(problems: Any) -> None:
    line = describe_problems(problems)
    body = problem_of_body(problems)
    assert isinstance(line, str) and isinstance(body, str)
    if isinstance(problems, str):
        assert line == problems


@PROPERTY
@given(
    remaining=st.one_of(st.just("0"), any_text),
    reset=st.one_of(st.integers(0, 2**40).map(str), weird_ids.map(str), any_text),
    now=st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)
    ),
)
def test_seconds_until_reset_is_none_or_a_finite_wait(
    remaining: str, reset: str, now: datetime
) -> None:
    headers = {"x-rate-limit-remaining": remaining, "x-rate-limit-reset": reset}
    wait = seconds_until_reset(headers, now)
    if remaining != "0":
        assert wait is None
    if wait is not None:
        assert math.isfinite(wait) and wait >= 0


@PROPERTY
@given(data=st.dictionaries(any_text, json_values) | x_tweets)
def test_a_reply_answer_gives_a_brand_post_or_says_the_outcome_is_unknown(
    data: dict[str, Any],
) -> None:
    at = datetime(2024, 5, 1, tzinfo=UTC)
    try:
        post = brand_reply_post(
            data, user_id="1000", handle="AcmeCare", text="Sorry!", in_reply_to="42", at=at
        )
    except ReplyOutcomeUnknown:
        assert not usable_x_id(data.get("id"))
    else:
        assert post.is_brand and post.in_reply_to_external_id == "42"
        assert post.external_id == str(data["id"])
        assert is_x_id(post.external_id)


def x_escape(text: str) -> str:
    """What X does to post text: exactly &, < and > become entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@PROPERTY
@given(text=tricky_text)
def test_unescape_undoes_x_escaping_exactly_once(text: str) -> None:
    assert unescape(x_escape(text)) == text
    assert unescape(html.escape(text, quote=False)) == text
    assert unescape(x_escape(x_escape(text))) == x_escape(text)


@PROPERTY
@given(text=tricky_text)
def test_unescape_leaves_text_without_those_three_entities_unchanged(text: str) -> None:
    assume(not any(e in text for e in ("&amp;", "&lt;", "&gt;")))
    assert unescape(text) == text


@PROPERTY
@given(
    text=tricky_text,
    mentions=st.lists(st.from_regex(r"\A@\w{1,15}\Z"), max_size=3),
    space=st.sampled_from([" ", "  ", "\n", "\t "]),
)
def test_comparable_text_is_stable_and_ignores_leading_mentions_and_spacing(
    text: str, mentions: list[str], space: str
) -> None:
    reduced = comparable_text(text)
    assert comparable_text(reduced) == reduced
    assert comparable_text("".join(m + space for m in mentions) + text) == reduced
    assert comparable_text(space + text.replace(" ", space) + space) == reduced
    assert "http://" not in reduced and "https://" not in reduced


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------

CHECKED = ("PORT", "SLA_SECONDS", "URGENCY_THRESHOLDS", "DATABASE_URL")
# Environment values cannot hold NUL or lone surrogates.
env_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
setting_values = st.one_of(
    env_text,
    st.integers().map(str),
    st.floats().map(str),
    st.lists(st.floats(), min_size=0, max_size=4).map(lambda v: ",".join(map(str, v))),
    st.lists(
        st.tuples(st.sampled_from(["P1", "p2", "P3", "P4", "P5", " P1", ""]), env_text), max_size=5
    ).map(lambda pairs: ",".join(f"{k}={v}" for k, v in pairs)),
    st.sampled_from(
        [
            "0.7,0.45,0.25",
            "1,1,1",
            "nan,nan,nan",
            "inf,0,0",
            "P1=900,P2=3600,P3=14400,P4=86400",
            "P1=²,P2=1,P3=1,P4=1",
            "P1=" + "9" * 5000 + ",P2=1,P3=1,P4=1",
            "postgres://u:p@h/db",
            "sqlite+pysqlite:///x.db",
            "mysql://x",
            "65535",
            "0",
            "٨٠٠٠",
            "1_000",
        ]
    ),
)


def check_settings(s: Settings) -> None:
    assert 1 <= s.port <= 65535
    p1, p2, p3 = s.urgency_thresholds
    assert 1 >= p1 >= p2 >= p3 >= 0
    assert sorted(s.sla_seconds) == ["P1", "P2", "P3", "P4"]
    assert all(type(v) is int and v >= 0 for v in s.sla_seconds.values())
    scheme = s.database_url.split("://", 1)[0].split("+", 1)[0]
    assert s.database_url == "" or scheme in ("sqlite", "postgres", "postgresql")


@pytest.fixture
def clean_environ() -> Iterator[None]:
    """Settings read from nothing but what each example sets."""
    with pytest.MonkeyPatch.context() as mp:
        for field in Settings.model_fields.values():
            if field.alias:
                mp.delenv(field.alias, raising=False)
        yield


@PROPERTY
@given(name=st.sampled_from(CHECKED), value=setting_values)
def test_any_environment_value_gives_valid_settings_or_a_config_error_naming_the_variable(
    clean_environ: None, name: str, value: str
) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(name, value)
        assert os.environ[name] == value
        try:
            loaded = load_settings()
        except ConfigError as exc:
            assert name in str(exc)
        else:
            check_settings(loaded)


@PROPERTY
@given(values=st.fixed_dictionaries({}, optional={n: setting_values for n in CHECKED}))
def test_any_values_passed_by_name_give_valid_settings_or_a_config_error_naming_one(
    clean_environ: None, values: dict[str, str]
) -> None:
    try:
        loaded = load_settings(**values)
    except ConfigError as exc:
        assert any(name in str(exc) for name in values)
    else:
        check_settings(loaded)


# ---------------------------------------------------------------------------------------------
# Regressions: each input below once escaped as a bare ValueError, OverflowError, TypeError,
# AttributeError, KeyError or csv.Error.
# ---------------------------------------------------------------------------------------------

HEADER = ",".join(twcs.COLUMNS)


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ('1,a,True,Tue Oct 31 22:10:47 +0000 2017,"' + "z" * 200_000 + '",,', "unreadable CSV"),
        ("1,a,True,Mon Jan 01 00:30:00 +0100 0001,hi,,", "malformed TWCS row"),
        ("²,a,True,Tue Oct 31 22:10:47 +0000 2017,hi,,", "not a tweet id"),
        ("1" * 5000 + ",a,True,Tue Oct 31 22:10:47 +0000 2017,hi,,", "not a tweet id"),
        ("1,a,True,Tue Oct 31 22:10:47 +0000 2017,hi,١٢,", "not a tweet id"),
    ],
    ids=[
        "oversized-field",
        "time-before-year-1-in-utc",
        "superscript-id",
        "5000-digit-id",
        "arabic-id",
    ],
)
def test_a_twcs_row_that_crashed_the_reader_is_a_source_error_naming_file_and_line(
    tmp_path: Path, row: str, problem: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(f"{HEADER}\n{row}\n", encoding="utf-8")
    with pytest.raises(SourceError, match=problem) as caught:
        twcs.load_posts([path])
    assert "bad.csv line 2" in str(caught.value)


def test_a_twcs_header_with_spaces_around_the_names_is_read(tmp_path: Path) -> None:
    path = tmp_path / "spaced.csv"
    header = ", ".join(twcs.COLUMNS)
    path.write_text(f"{header}\n1,AcmeCare,False,{VALID_TIME},hello,,\n", encoding="utf-8")
    (post,) = twcs.load_posts([path])
    assert (post.external_id, post.text, post.is_brand) == ("1", "hello", True)


@pytest.mark.parametrize(
    "payload",
    [
        {"data": 5},
        {"data": {"id": "1"}},
        {"data": "posts"},
    ],
    ids=["int-data", "object-data", "string-data"],
)
def test_an_x_page_whose_data_is_not_an_array_is_a_source_error(payload: Any) -> None:
    with pytest.raises(SourceError, match="data is not an array"):
        posts_from_page(payload, "9")


@pytest.mark.parametrize(
    "tweet",
    [
        {"id": "1", "note_tweet": "long text"},
        {"id": "1", "public_metrics": [1]},
        {"id": "1", "referenced_tweets": 3},
        {"id": "1", "lang": 7, "text": ["not", "text"]},
    ],
    ids=["note-string", "metrics-list", "refs-int", "lang-and-text-wrong-type"],
)
def test_an_x_post_field_of_the_wrong_type_counts_as_absent(tweet: dict[str, Any]) -> None:
    (post,) = posts_from_page({"data": [tweet]}, "9")
    assert post.external_id == "1"
    assert post.metrics == {} and post.in_reply_to_external_id is None
    assert post.lang is None and post.text == ""
    assert post.created_at == parse_time(None, "1")


@pytest.mark.parametrize(
    "includes",
    [{"users": 5}, ["users"], {"users": [{"id": "2", "public_metrics": "x", "username": 3}]}],
    ids=["users-int", "includes-list", "user-metrics-string"],
)
def test_malformed_expanded_users_leave_the_author_unexpanded(includes: Any) -> None:
    page = {"data": [{"id": "1", "author_id": "2", "text": "hi"}], "includes": includes}
    (post,) = posts_from_page(page, "9")
    assert post.author_handle == "2"
    assert post.author_followers is None


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "abc", "text": "no time and no snowflake"},
        {"id": "²"},
        {"id": "1" * 5000},
        {"id": None},
    ],
    ids=["letters", "superscript", "5000-digits", "none"],
)
def test_a_malformed_x_post_is_skipped_with_a_warning_and_the_rest_kept(
    bad: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    page = {"data": [bad, {"id": "7", "text": "fine"}]}
    with caplog.at_level(logging.WARNING, logger="socialcare.sources.x_parse"):
        posts = posts_from_page(page, "9")
    assert [p.external_id for p in posts] == ["7"]
    assert "skipping" in caplog.text
    with pytest.raises(SourceError, match="X post"):
        tweet_to_post(bad, {}, "9")


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"], ids=["min", "max"]
)
def test_an_iso_time_outside_the_utc_range_falls_back_to_the_snowflake(value: str) -> None:
    assert parse_time(value, "1790000000000000000") == parse_time(None, "1790000000000000000")
    with pytest.raises(ValueError, match="created_at"):
        parse_time(value, "abc")


def test_max_id_ignores_digits_int_refuses_and_ids_longer_than_twenty_digits() -> None:
    assert max_id("²", ["1" * 5000, "١٢٣", "5"]) == "5"
    assert max_id("1" * 21, []) is None


def test_describe_problems_accepts_a_single_problem_or_a_non_list() -> None:
    assert describe_problems(5) == ""
    assert describe_problems({"title": "Oops", "detail": "it broke"}) == "Oops: it broke"
    assert problem_of_body({"errors": {"message": "nested"}}) == "nested"


@pytest.mark.parametrize("reset", ["²", "9" * 400], ids=["superscript", "400-digits"])
def test_an_unreadable_rate_limit_reset_header_gives_no_wait(reset: str) -> None:
    headers = {"x-rate-limit-remaining": "0", "x-rate-limit-reset": reset}
    assert seconds_until_reset(headers, datetime.now(UTC)) is None


def test_a_reply_answer_without_a_post_id_says_the_outcome_is_unknown() -> None:
    with pytest.raises(ReplyOutcomeUnknown, match="no post id"):
        brand_reply_post(
            {"text": "hi"},
            user_id="1",
            handle="h",
            text="hi",
            in_reply_to="2",
            at=datetime.now(UTC),
        )


def test_the_error_for_a_huge_malformed_post_quotes_it_briefly() -> None:
    with pytest.raises(SourceError) as caught:
        tweet_to_post({"id": None, "text": "x" * 10_000}, {}, "9")
    assert len(str(caught.value)) < 400
