"""The replay source: TWCS rows streamed as a virtual clock passes their public times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from socialcare.errors import SourceError
from socialcare.sources import replay, twcs
from socialcare.sources.base import AccountRef

HEADER = "tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id\n"


def _write(tmp_path: Path, rows: list[str], name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return path


ROWS = [
    "1,111,True,Tue Oct 31 10:00:00 +0000 2017,@acme my order &amp; refund?,2,",
    "2,acme,False,Tue Oct 31 10:05:00 +0000 2017,@111 sorry! DM us,,1.0",
    "3,222,True,Tue Oct 31 10:10:00 +0000 2017,@acme still broken,,",
    "4,222,True,Tue Oct 31 18:00:00 +0000 2017,@acme hello??,,",
]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(replay, "_now", c)
    twcs._load.cache_clear()
    return c


def _account(path: Path, **config: object) -> AccountRef:
    return AccountRef(
        id=1, platform="twcs", handle="replay:t", config={"files": [str(path)], **config}
    )


def test_posts_arrive_as_the_virtual_clock_passes_their_public_time(tmp_path, clock):
    source = replay.ReplaySource(speedup=60, max_gap_seconds=3600)
    account = _account(_write(tmp_path, ROWS), speedup=60)
    first = source.fetch(account, {})
    assert [p.external_id for p in first.posts] == ["1"]
    assert first.posts[0].created_at == datetime(2017, 10, 31, 10, 0, tzinfo=UTC)
    clock.now += timedelta(seconds=5)  # 5 min of virtual time at 60x
    second = source.fetch(account, first.cursors)
    assert [p.external_id for p in second.posts] == ["2"]
    assert second.observed_at == datetime(2017, 10, 31, 10, 5, tzinfo=UTC)
    clock.now += timedelta(seconds=5)
    third = source.fetch(account, second.cursors)
    assert [p.external_id for p in third.posts] == ["3"]
    assert not third.exhausted


def test_idle_gaps_longer_than_the_limit_are_skipped(tmp_path, clock):
    source = replay.ReplaySource(speedup=60, max_gap_seconds=600)
    account = _account(_write(tmp_path, ROWS), speedup=60)
    cursors: dict = {}
    seen = []
    for _ in range(4):
        result = source.fetch(account, cursors)
        seen += [p.external_id for p in result.posts]
        cursors = result.cursors
        clock.now += timedelta(seconds=10)
    assert seen == ["1", "2", "3", "4"]
    assert result.exhausted


def test_brand_rows_are_flagged_and_every_post_names_its_brand(tmp_path, clock):
    posts = twcs.load_posts([_write(tmp_path, ROWS)])
    assert [(p.is_brand, p.brand_handle) for p in posts] == [
        (False, "acme"),
        (True, "acme"),
        (False, "acme"),
        (False, "acme"),
    ]
    assert posts[1].in_reply_to_external_id == "1"  # "1.0" in the file
    assert posts[0].text == "@acme my order & refund?"  # unescaped exactly once


def test_a_malformed_row_is_a_clear_error_naming_file_and_line(tmp_path, clock):
    path = _write(tmp_path, [*ROWS[:2], "x5,acme,maybe,yesterday,hi,,"], name="bad.csv")
    with pytest.raises(SourceError, match=r"bad\.csv line 4"):
        twcs.load_posts([path])


def test_a_file_that_is_not_twcs_is_refused(tmp_path, clock):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(SourceError, match="missing columns"):
        twcs.load_posts([path])


def test_crlf_line_ends_and_bare_cr_inside_text_are_read(tmp_path, clock):
    path = tmp_path / "crlf.csv"
    body = (
        HEADER.replace("\n", "\r\n")
        + '1,111,True,Tue Oct 31 10:00:00 +0000 2017,"line\rbreak",,\r\n'
    )
    path.write_bytes(body.encode())
    (post,) = twcs.load_posts([path])
    assert post.text == "line\rbreak"


def test_a_sent_reply_is_recorded_on_the_replay_clock(tmp_path, clock):
    source = replay.ReplaySource()
    brand = AccountRef(
        id=2, platform="twcs", handle="acme", config={"clock": "2017-10-31T10:07:00+00:00"}
    )
    sent = source.send_reply(brand, in_reply_to="3", text="We're on it")
    again = source.send_reply(brand, in_reply_to="3", text="We're on it")
    assert sent.post.is_brand and sent.post.in_reply_to_external_id == "3"
    assert sent.created_at == datetime(2017, 10, 31, 10, 7, tzinfo=UTC)
    assert sent.external_id == again.external_id


def test_the_bundled_sample_and_the_shared_files_parse(clock):
    from tests.conftest import SHARED_DATA

    bundled = twcs.load_posts(
        [twcs.Path(replay.__file__).parent.parent / "data" / "twcs_sample.csv"]
    )
    assert len(bundled) == 1006  # 816 rows of the TWCS head and the demo's outage (its README)
    # One stretch of real traffic (a quiet afternoon, then the evening rush), so a replay on
    # today's clock never sits in a years-long gap.
    assert bundled[-1].created_at - bundled[0].created_at < timedelta(hours=15)
    random = twcs.load_posts([SHARED_DATA / "twcs" / "twcs_random_5000.csv"])
    assert len(random) == 5000
    assert all(p.created_at.tzinfo is not None for p in random)


def test_a_file_starting_with_a_utf8_byte_order_mark_is_read(tmp_path, clock):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + ROWS[0] + "\n").encode())
    (post,) = twcs.load_posts([path])
    assert (post.external_id, post.author_external_id) == ("1", "111")


def test_only_what_x_escapes_is_unescaped_and_only_once(tmp_path, clock):
    text = "@acme see https://x.example/?a=1&copy=2&reg=3 &nbsp; &#39; &quot; &amp;lt; &lt;b&gt;"
    path = _write(tmp_path, [f'1,111,True,Tue Oct 31 10:00:00 +0000 2017,"{text}",,'])
    account = _account(path, speedup=60)
    (post,) = replay.ReplaySource(speedup=60).fetch(account, {}).posts
    assert post.text == (
        "@acme see https://x.example/?a=1&copy=2&reg=3 &nbsp; &#39; &quot; &lt; <b>"
    )


def test_the_replay_and_the_x_parser_unescape_by_one_rule(tmp_path, clock):
    from socialcare.sources.x_parse import posts_from_page

    text = "&amp;amp; &copy=2 &gt;&gt; &#169; &AMP;"
    path = _write(tmp_path, [f"7,111,True,Tue Oct 31 10:00:00 +0000 2017,{text},,"])
    (replayed,) = twcs.load_posts([path])
    tweet = {"id": "7", "text": text, "author_id": "111", "created_at": "2017-10-31T10:00:00Z"}
    (polled,) = posts_from_page({"data": [tweet]}, brand_user_id="900")
    assert replayed.text == polled.text == "&amp; &copy=2 >> &#169; &AMP;"


def test_nul_and_bytes_that_are_not_utf8_become_u_fffd_and_their_rows_are_named(tmp_path, clock):
    path = tmp_path / "bytes.csv"
    path.write_bytes(
        HEADER.encode()
        + b"1,111,True,Tue Oct 31 10:00:00 +0000 2017,@acme a\x00b,,\n"
        + b"2,111,True,Tue Oct 31 10:01:00 +0000 2017,@acme caf\xe9 \xed\xa0\x80,,\n"
        + "3,111,True,Tue Oct 31 10:02:00 +0000 2017,@acme \ufffd as written,,\n".encode()
        + b"4,11\xff,True,Tue Oct 31 10:03:00 +0000 2017,@acme fine,,\n"
    )
    loaded = twcs.load([path])
    texts = {p.external_id: p.text for p in loaded.posts}
    assert texts == {
        "1": "@acme a\ufffdb",
        "2": "@acme caf\ufffd \ufffd\ufffd\ufffd",
        "3": "@acme \ufffd as written",
        "4": "@acme fine",
    }
    assert {p.external_id: p.author_external_id for p in loaded.posts}["4"] == "11\ufffd"
    assert loaded.replaced == ("1", "2", "4")  # row 3's U+FFFD was in the file: not replaced


def _today(path: Path, backfill: float) -> AccountRef:
    return _account(path, today=True, backfill_seconds=backfill, speedup=1.0)


def test_on_todays_clock_the_backfill_lands_in_the_hours_before_now_as_seen_when_posted(
    tmp_path, clock
):
    source = replay.ReplaySource(max_gap_seconds=3600)
    account = _today(_write(tmp_path, ROWS), backfill=360)  # the first 6 minutes: rows 1 and 2
    first = source.fetch(account, {})
    assert [p.external_id for p in first.posts] == ["1", "2"]
    assert first.observed_at is None  # each as seen at its own public time
    start = clock.now
    assert [p.created_at for p in first.posts] == [
        start - timedelta(minutes=6),
        start - timedelta(minutes=1),
    ]
    again = source.fetch(account, first.cursors)
    assert again.posts == [] and again.observed_at == start and not again.exhausted


def test_on_todays_clock_posts_arrive_at_their_own_pace_with_their_delays_kept(tmp_path, clock):
    source = replay.ReplaySource(max_gap_seconds=3600)
    account = _today(_write(tmp_path, ROWS), backfill=360)
    first = source.fetch(account, {})
    clock.now += timedelta(minutes=3)
    early = source.fetch(account, first.cursors)
    assert early.posts == []  # row 3 was written 4 minutes after the backfill's end
    clock.now += timedelta(minutes=1)
    live = source.fetch(account, early.cursors)
    assert [p.external_id for p in live.posts] == ["3"]
    assert live.posts[0].created_at == clock.now == live.observed_at
    # The brand's reply came 5 minutes after the customer's post, and still does.
    assert first.posts[1].created_at - first.posts[0].created_at == timedelta(minutes=5)


def test_on_todays_clock_a_long_idle_stretch_is_skipped_not_dated_in_the_past(tmp_path, clock):
    source = replay.ReplaySource(max_gap_seconds=3600)
    account = _today(_write(tmp_path, ROWS), backfill=720)  # rows 1 to 3
    first = source.fetch(account, {})
    assert len(first.posts) == 3
    clock.now += timedelta(seconds=30)
    # Row 4 was written almost 8 hours later: the gap is skipped, it is due now.
    last = source.fetch(account, first.cursors)
    assert [p.external_id for p in last.posts] == ["4"]
    assert last.posts[0].created_at == clock.now == last.observed_at
    assert last.exhausted


def test_on_todays_clock_a_stop_pauses_the_replay_and_a_restart_goes_on(tmp_path, clock):
    source = replay.ReplaySource(max_gap_seconds=600)
    account = _today(_write(tmp_path, ROWS), backfill=360)
    first = source.fetch(account, {})
    clock.now += timedelta(days=2)  # socialcare was stopped for two days
    resumed = source.fetch(account, first.cursors)
    assert resumed.posts == []  # row 3 is 4 minutes of the replay away, not two days overdue
    clock.now += timedelta(minutes=4)
    later = source.fetch(account, resumed.cursors)
    assert [p.external_id for p in later.posts] == ["3"]
    assert later.posts[0].created_at == clock.now


def test_a_reply_on_todays_clock_is_dated_now(tmp_path, clock):
    source = replay.ReplaySource(max_gap_seconds=600)
    feed = _today(_write(tmp_path, ROWS), backfill=360)
    first = source.fetch(feed, {})
    clock.now += timedelta(seconds=42)
    brand = AccountRef(id=2, platform="twcs", handle="acme", config={})
    sent = source.send_reply(
        replay.with_clock(brand, first.cursors, 1.0), in_reply_to="1", text="Hi"
    )
    assert sent.created_at == clock.now
