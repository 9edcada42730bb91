"""The Celery app: broker from settings, task defaults, the beat schedule.

Broker: BROKER_URL if set, else REDIS_URL, else the embedded file-system broker (kombu's
`filesystem://` transport over a folder under SOCIALCARE_DATA_DIR), which needs no server.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import task_prerun, worker_init, worker_process_init
from kombu import Queue

# Every model in the metadata in every worker and beat process: a flush orders its tables by
# their foreign keys, and one naming a table never imported fails (NoReferencedTableError).
import socialcare.models  # noqa: F401
from socialcare.config import Settings, get_settings
from workers.logging_setup import install
from workers.roles import limit_threads, set_up_scorer, torch_threads

log = logging.getLogger(__name__)

# Three queues by kind of work. The score queue carries model batches and is served by scorer
# workers (the Procfile's `scorer`: concurrency 1, torch threads = its cores). The default and
# control queues carry I/O (routing, replies, reconciles, digests; polls and the sweep) and are
# served by the Procfile's `worker`, whose processes never wait behind a model batch. Routing
# stays with the I/O: it is short database work, and behind a model batch it would wait for it.
QUEUE = "socialcare"
CONTROL_QUEUE = "socialcare.control"
SCORE_QUEUE = "socialcare.score"
SCORE_TASKS = ("socialcare.score_posts",)
IO_QUEUES = (QUEUE, CONTROL_QUEUE)
CONTROL_TASKS = (
    "socialcare.poll_account",
    "socialcare.poll_due",
    "socialcare.sweep",
    "socialcare.schedule_digests",
)
VISIBILITY_TIMEOUT = 3600  # seconds a Redis broker waits before redelivering an unacked task
TASK_TIME_LIMIT = 300  # hard limit, well below the visibility timeout
TASK_SOFT_TIME_LIMIT = 240
# Platforms send SIGTERM, then SIGKILL 30 s later. With REMAP_SIGTERM=SIGQUIT (the Procfile sets
# it) SIGTERM starts a soft shutdown: running tasks get this long to finish, then the worker
# cancels them and, since acks are late, hands their messages back to the broker.
SOFT_SHUTDOWN_SECONDS = 20
FILESYSTEM_POLL_SECONDS = 0.25
RETRY_BACKOFF_MAX = 60  # longest countdown a task retry waits, far below the visibility timeout


def configure(app: Celery, settings: Settings) -> None:
    """Apply socialcare's broker and task settings to app."""
    transport_options: dict[str, object] = {"visibility_timeout": VISIBILITY_TIMEOUT}
    broker = settings.celery_broker_url
    if broker.startswith("filesystem://"):
        folder = settings.broker_folder
        (folder / "messages").mkdir(parents=True, exist_ok=True)
        (folder / "control").mkdir(parents=True, exist_ok=True)
        transport_options = {
            "data_folder_in": str(folder / "messages"),
            "data_folder_out": str(folder / "messages"),
            "control_folder": str(folder / "control"),
            # How often an idle worker looks for new message files (kombu's default is 1 s): a
            # worker notices a stop only between looks, and `socialcare run` stops in 10 s.
            "polling_interval": FILESYSTEM_POLL_SECONDS,
        }
    poll_tick = min(2.0, settings.poll_interval_seconds)
    app.conf.update(
        broker_url=broker,
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        # A broker that restarts or fails over: reconnect for as long as it takes (Celery's
        # default gives up after 100 tries and stops the worker, and the care team's queue
        # with it).
        broker_connection_retry=True,
        broker_connection_max_retries=None,
        # Tasks running when the connection drops run to the end (their work is committed in
        # the database); their acks go to the lost connection. workers.consumer keeps the
        # worker up through that and through kombu's teardown of a Redis connection that its
        # pub/sub half reported lost first (tasks are idempotent: a redelivery is harmless).
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_consumer="workers.consumer:Consumer",
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        # At-least-once: ack after the task ran, requeue if the worker died running it.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_soft_shutdown_timeout=SOFT_SHUTDOWN_SECONDS,
        task_time_limit=TASK_TIME_LIMIT,
        task_soft_time_limit=TASK_SOFT_TIME_LIMIT,
        task_default_queue=QUEUE,
        # Polls and the sweep have a queue of their own, so a backlog of replies or routing
        # never delays the next poll (an I/O worker takes from both in turn); scoring has its
        # own, served by scorer workers.
        task_queues=(Queue(QUEUE), Queue(CONTROL_QUEUE), Queue(SCORE_QUEUE)),
        task_routes={
            **{name: {"queue": CONTROL_QUEUE} for name in CONTROL_TASKS},
            **{name: {"queue": SCORE_QUEUE} for name in SCORE_TASKS},
        },
        worker_send_task_events=False,
        worker_hijack_root_logger=False,
        beat_scheduler="workers.beat:DatabaseScheduler",
        beat_schedule={
            "sweep": {"task": "socialcare.sweep", "schedule": settings.sweep_interval_seconds},
            "poll-due": {"task": "socialcare.poll_due", "schedule": poll_tick},
            # Creates the due digest deliveries (once each, whatever runs it) and sends them.
            "schedule-digests": {
                "task": "socialcare.schedule_digests",
                "schedule": settings.digest_interval_seconds,
            },
        },
        timezone="UTC",
    )


# This worker's torch threads per pool process and whether it scores, set in its main process
# (worker_init) before the pool starts and read by each pool process as it starts.
_role: dict[str, Any] = {"threads": 1, "scorer": False}


def on_worker_init(sender: Any = None, **_: Any) -> None:
    """A worker's kind from the queues it consumes: consuming the score queue makes it a
    scorer. The thread count goes into the environment its pool processes inherit."""
    queues = list(sender.app.amqp.queues.consume_from)
    threads = torch_threads(
        queues=queues,
        score_queue=SCORE_QUEUE,
        concurrency=int(sender.concurrency or 1),
        settings=get_settings(),
    )
    _role.update(threads=threads, scorer=SCORE_QUEUE in queues)
    limit_threads(threads)


def on_worker_process_init(**_: Any) -> None:
    """A pool process: torch (whenever it loads) runs the worker's threads per process."""
    threads, scorer = int(_role["threads"]), bool(_role["scorer"])
    limit_threads(threads)
    _role["torch_set"] = not scorer
    log.info("%s process ready: torch threads %d", "scorer" if scorer else "worker", threads)


def on_task_prerun(**_: Any) -> None:
    """A scorer's first task loads torch and sets its threads (torch.set_num_threads)."""
    if _role.get("torch_set", True):
        return
    _role["torch_set"] = True
    threads = set_up_scorer(int(_role["threads"]))
    log.info("scorer process: torch runs %d threads", threads)


worker_init.connect(on_worker_init, weak=False, dispatch_uid="socialcare.worker_role")
worker_process_init.connect(
    on_worker_process_init, weak=False, dispatch_uid="socialcare.worker_process_role"
)
task_prerun.connect(on_task_prerun, weak=False, dispatch_uid="socialcare.scorer_threads")


def create_app(settings: Settings | None = None) -> Celery:
    app = Celery("socialcare", include=["workers.tasks"])
    configure(app, settings or get_settings())
    return app


app = create_app()
install(app)
