"""The worker's consumer (workers.consumer) in isolation, over kombu's in-memory transport: what
counts as a released channel, and which errors an ack may end in without stopping the worker.
test_broker_restart.py runs it in a real worker over a restarting Redis."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from celery.utils.imports import symbol_by_name
from celery.worker.consumer import Consumer as CeleryConsumer
from kombu import Connection, Exchange, Queue
from kombu.message import Message

from socialcare.config import Settings
from workers.app import create_app
from workers.consumer import Consumer, channel_released, settle_message


@pytest.fixture
def delivered() -> Iterator[tuple[Connection, Message]]:
    """A message taken, unacknowledged, from a queue on an in-memory broker."""
    conn = Connection("memory://")
    queue = Queue("guard", Exchange("guard"), "guard")
    with conn.Producer() as producer:
        producer.publish({"n": 1}, exchange=queue.exchange, routing_key="guard", declare=[queue])
    message = queue(conn.channel()).get(no_ack=False)
    assert message is not None
    try:
        yield conn, message
    finally:
        conn.close()


class _UnreachableMessage(Message):
    """A message whose acknowledgement fails the way kombu's Redis channel fails once its
    transport is released."""

    def ack_log_error(self, logger: Any, errors: Any, multiple: bool = False) -> None:
        raise AttributeError("'NoneType' object has no attribute 'hostname'")


def test_a_channel_is_released_once_its_connection_is_closed(delivered):
    conn, message = delivered
    assert not channel_released(message.channel)
    conn.close()
    assert channel_released(message.channel)
    assert not channel_released(None)  # not a kombu virtual channel (an AMQP one, say)


def test_an_ack_on_an_open_channel_goes_through(delivered):
    _, message = delivered
    settle_message(message.ack_log_error, logging.getLogger("test"), ())
    assert message.acknowledged


def test_an_ack_that_cannot_reach_a_released_channel_is_logged_not_raised(delivered, caplog):
    conn, message = delivered
    unreachable = _UnreachableMessage(body=message.body, channel=message.channel)
    unreachable.delivery_info = message.delivery_info
    unreachable.delivery_tag = "tag-1"
    conn.close()
    with caplog.at_level(logging.WARNING, logger="workers.consumer"):
        assert settle_message(unreachable.ack_log_error, logging.getLogger("test"), ()) is None
    assert "tag-1" in caplog.text and "not acknowledged" in caplog.text


def test_any_other_attribute_error_still_propagates(delivered):
    _, message = delivered
    unreachable = _UnreachableMessage(body=message.body, channel=message.channel)
    with pytest.raises(AttributeError):  # its channel is open: a bug, not a lost broker
        settle_message(unreachable.ack_log_error, logging.getLogger("test"), ())


def test_workers_run_this_consumer_and_reconnect_for_as_long_as_it_takes(tmp_path):
    app = create_app(Settings(SOCIALCARE_DATA_DIR=tmp_path))
    assert symbol_by_name(app.conf.worker_consumer) is Consumer
    assert app.conf.broker_connection_retry is True
    assert app.conf.broker_connection_max_retries is None
    # The methods overridden are Celery's own: a rename there would leave them unused.
    for name in ("call_soon_ack", "on_connection_error_after_connected"):
        assert name in vars(CeleryConsumer) and name in vars(Consumer)
