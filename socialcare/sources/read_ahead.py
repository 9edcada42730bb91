"""Fetching the next page of a poll while the current one is stored.

A poll alternates between waiting on the platform (HTTP, parsing) and waiting on the database
(storing a page, committing it). ReadAhead runs the source's page iterator in a thread of its
own, exactly one page ahead of the consumer: while page n is stored, page n+1 is fetched, and
page n+2 is not asked for until page n+1 is taken. A worker killed mid-poll therefore has at
most the page being stored and the one being fetched uncommitted, and X bills neither twice
(a post read twice in one UTC day is billed once).

Everything the iterator raises reaches the consumer at the point it would have, serially: after
the pages before it have been taken (and so stored).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_ITEM, _END, _ERROR = "item", "end", "error"


class ReadAhead(Generic[T]):
    """Iterate items produced one ahead by a background thread; close() stops it and waits."""

    def __init__(self, items: Iterator[T], *, name: str = "read-ahead") -> None:
        self._items = items
        self._results: queue.SimpleQueue[tuple[str, object]] = queue.SimpleQueue()
        self._wanted = threading.Semaphore(1)  # the first item is wanted at once
        self._stopping = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                self._wanted.acquire()
                if self._stopping.is_set():
                    return
                try:
                    item = next(self._items)
                except StopIteration:
                    self._results.put((_END, None))
                    return
                self._results.put((_ITEM, item))
        except BaseException as exc:  # handed to the consumer, raised where it asks for more
            self._results.put((_ERROR, exc))
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> ReadAhead[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        kind, value = self._results.get()
        if kind == _ITEM:
            self._wanted.release()  # fetch the next one while this one is handled
            return value  # type: ignore[return-value]
        self._done = True
        self._thread.join()
        if kind == _ERROR:
            assert isinstance(value, BaseException)
            raise value
        raise StopIteration

    def close(self) -> None:
        """Stop asking for items; returns once the item being fetched (if any) is done."""
        self._done = True
        self._stopping.set()
        self._wanted.release()
        self._thread.join()
