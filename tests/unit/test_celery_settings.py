"""Celery's delivery settings, and the relations between them that keep at-least-once harmless."""

from __future__ import annotations

import pytest

from socialcare.config import load_settings
from tests.conftest import REPO
from workers.app import VISIBILITY_TIMEOUT, create_app


@pytest.fixture
def app(monkeypatch, tmp_path):
    monkeypatch.setenv("SOCIALCARE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    return create_app(load_settings())


def test_tasks_are_acknowledged_late_and_requeued_when_their_worker_dies(app):
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1


def test_time_limits_stay_below_the_brokers_visibility_timeout(app):
    visibility = app.conf.broker_transport_options["visibility_timeout"]
    assert visibility == VISIBILITY_TIMEOUT
    assert app.conf.task_soft_time_limit < app.conf.task_time_limit < visibility


def test_a_terminated_worker_hands_tasks_back_before_the_platforms_30_second_kill(app):
    assert 0 < app.conf.worker_soft_shutdown_timeout < 30
    procfile = (REPO / "Procfile").read_text()
    worker = next(line for line in procfile.splitlines() if line.startswith("worker:"))
    assert "REMAP_SIGTERM=SIGQUIT" in worker


def test_no_periodic_run_is_spaced_wider_than_the_visibility_timeout(app):
    for entry in app.conf.beat_schedule.values():
        assert 0 < float(entry["schedule"]) < VISIBILITY_TIMEOUT
        assert "countdown" not in entry.get("options", {})
        assert "eta" not in entry.get("options", {})


def test_task_retries_back_off_within_the_visibility_timeout(app):
    import workers.tasks  # noqa: F401 - registers the tasks on the shared app
    from workers.app import app as shared

    steps = (
        "poll_account",
        "score_posts",
        "route_posts",
        "send_reply",
        "reconcile_reply",
        "sweep",
        "poll_due",
        "schedule_digests",
        "send_digest",
    )
    for task in (shared.tasks[f"socialcare.{step}"] for step in steps):
        assert task.autoretry_for and task.max_retries <= 10
        assert 0 < task.retry_backoff_max < VISIBILITY_TIMEOUT
        assert task.acks_late is True


def test_polls_and_the_sweep_have_their_own_queue_and_scoring_another(app):
    queues = {q.name for q in app.conf.task_queues}
    assert queues == {"socialcare", "socialcare.control", "socialcare.score"}
    routes = app.conf.task_routes
    assert routes["socialcare.poll_account"]["queue"] == "socialcare.control"
    assert routes["socialcare.score_posts"]["queue"] == "socialcare.score"
    assert "socialcare.route_posts" not in routes  # routing is I/O: the default queue


def test_the_beat_scheduler_is_the_leased_database_one(app):
    assert app.conf.beat_scheduler == "workers.beat:DatabaseScheduler"


def test_with_nothing_set_the_broker_is_the_embedded_file_system(monkeypatch, tmp_path):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("BROKER_URL", raising=False)
    monkeypatch.setenv("SOCIALCARE_DATA_DIR", str(tmp_path))
    app = create_app(load_settings())
    assert app.conf.broker_url == "filesystem://"
    folder = app.conf.broker_transport_options["data_folder_in"]
    assert folder.startswith(str(tmp_path)) and (tmp_path / "broker" / "messages").is_dir()
