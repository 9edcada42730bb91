"""The worker's consumer: Celery's, made to survive a broker connection that kombu cannot tear
down cleanly.

A worker holds two kinds of Redis connection: the task consumer's BRPOP and the pub/sub one of
its remote-control mailbox. When the broker restarts and the pub/sub connection reports it
first, the BRPOP is still waiting for its reply. Celery then collects the lost connection:
closing the consumer's channel fails on that read, another channel fails too, and kombu
releases the transport (transport.client = None) with the consumer's channel still open. The
close that follows has to put the running tasks' messages back, needs a fresh client pool for
it, and fails in kombu's Redis transport with AttributeError (`_connparams` reads the released
connection's hostname) instead of a connection error. Celery takes that for an unrecoverable
error and stops the worker; the acks of the tasks still running fail the same way as it goes.

Both are settled here, only when kombu has released the transport (any other AttributeError
still propagates): the teardown is logged and the consumer reconnects; an ack or reject that
cannot reach the broker from its released channel is logged and dropped. Nothing is lost: the
task ran and committed its work; its message, if the broker still has it, is delivered again
after the visibility timeout, and every task is idempotent (the database decides what is left).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer
from kombu.transport.virtual import Channel as VirtualChannel

log = logging.getLogger(__name__)


def transport_released(transport: Any) -> bool:
    """Whether kombu has released `transport`: closing a kombu Connection sets its transport's
    `client` (the Connection) to None, and a channel left open can no longer connect."""
    return transport is None or getattr(transport, "client", None) is None


def channel_released(channel: Any) -> bool:
    """Whether `channel` is a kombu virtual channel (Redis, file system, ...) whose transport
    has been released."""
    return isinstance(channel, VirtualChannel) and transport_released(channel.connection)


def settle_message(settle: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call `settle` (a message's ack_log_error or reject_log_error). When it fails because
    the message's channel belongs to a released transport, log it and return None."""
    message = getattr(settle, "__self__", None)
    try:
        return settle(*args, **kwargs)
    except AttributeError:
        if not channel_released(getattr(message, "channel", None)):
            raise
        log.warning(
            "task message %s came over a broker connection lost while the task ran: it is "
            "not acknowledged there (if the broker still has it, it is delivered again after "
            "the visibility timeout)",
            getattr(message, "delivery_tag", "?"),
        )
        return None


class Consumer(CeleryConsumer):
    """Celery's consumer, with a lost-connection teardown and acks that cannot stop it."""

    def call_soon_ack(self, p: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        # Celery schedules every ack and reject of a task message through here.
        return super().call_soon_ack(settle_message, p, *args, **kwargs)

    def on_connection_error_after_connected(self, exc: BaseException) -> None:
        connection = self.connection
        transport = connection.transport if connection is not None else None
        try:
            super().on_connection_error_after_connected(exc)
        except AttributeError:
            if transport is None or not transport_released(transport):
                raise
            log.warning(
                "the lost broker connection did not close cleanly; reconnecting", exc_info=True
            )
