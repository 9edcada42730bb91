"""ReadAhead: a poll's next page fetched while the current one is stored, one page ahead only."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from socialcare.errors import SourceError
from socialcare.sources.read_ahead import ReadAhead


def test_the_next_item_is_fetched_while_the_consumer_handles_the_current_one() -> None:
    second_asked = threading.Event()

    def pages() -> Iterator[int]:
        yield 1
        second_asked.set()
        yield 2

    ahead = ReadAhead(pages())
    assert next(ahead) == 1
    # Serially, page 2 would only be asked for once the consumer comes back for it.
    assert second_asked.wait(5), "page 2 was not fetched while page 1 was handled"
    assert list(ahead) == [2]


def test_items_arrive_in_order_and_never_more_than_one_ahead() -> None:
    produced: list[int] = []

    def pages() -> Iterator[int]:
        for i in range(20):
            produced.append(i)
            yield i

    taken = []
    ahead = ReadAhead(pages())
    for item in ahead:
        time.sleep(0.005)  # time enough for a producer that would run further ahead
        assert len(produced) <= len(taken) + 2  # this item, and at most the next one
        taken.append(item)
    assert taken == list(range(20))


def test_an_error_of_the_source_reaches_the_consumer_after_the_items_before_it() -> None:
    def pages() -> Iterator[int]:
        yield 1
        yield 2
        raise SourceError("X mentions answered 500")

    ahead = ReadAhead(pages())
    assert next(ahead) == 1
    assert next(ahead) == 2
    with pytest.raises(SourceError, match="answered 500"):
        next(ahead)
    with pytest.raises(StopIteration):
        next(ahead)


def test_close_stops_the_source_and_runs_its_cleanup() -> None:
    produced: list[int] = []
    closed = threading.Event()

    def pages() -> Iterator[int]:
        try:
            for i in range(1000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    ahead = ReadAhead(pages())
    assert next(ahead) == 0
    ahead.close()
    assert closed.is_set()  # close() returns once the source is closed
    assert len(produced) <= 2
    with pytest.raises(StopIteration):
        next(ahead)


def test_an_exhausted_source_ends_the_iteration_and_close_is_harmless() -> None:
    ahead = ReadAhead(iter([]))
    assert list(ahead) == []
    ahead.close()
    ahead.close()
