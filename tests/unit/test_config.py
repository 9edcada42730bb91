"""Settings from the environment: defaults, Heroku URLs, and errors that name the variable."""

from __future__ import annotations

import pytest

from socialcare.config import load_settings
from socialcare.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DATABASE_URL",
        "REDIS_URL",
        "BROKER_URL",
        "PORT",
        "SLA_SECONDS",
        "URGENCY_THRESHOLDS",
        "REPLAY_FILES",
        "POLL_INTERVAL_SECONDS",
        "LOG_LEVEL",
    ):
        monkeypatch.delenv(name, raising=False)


def test_with_nothing_set_it_uses_a_sqlite_file_and_the_embedded_broker(monkeypatch):
    monkeypatch.setenv("SOCIALCARE_DATA_DIR", "/srv/care")
    s = load_settings()
    assert s.sqlalchemy_url == "sqlite:////srv/care/socialcare.db"
    assert s.celery_broker_url == "filesystem://"
    assert s.port == 8000


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db.example:5432/care", "postgresql+psycopg://u:p@db.example:5432/care"),
        ("postgresql://u@h/care", "postgresql+psycopg://u@h/care"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_heroku_postgres_urls_are_accepted(monkeypatch, given, expected):
    monkeypatch.setenv("DATABASE_URL", given)
    assert load_settings().sqlalchemy_url == expected


def test_redis_url_makes_redis_the_broker_and_broker_url_overrides_it(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "rediss://:pw@cache:6380/0")
    # TLS Redis as platforms give it: the certificate check is stated (REDIS_TLS_VERIFY).
    assert load_settings().celery_broker_url == "rediss://:pw@cache:6380/0?ssl_cert_reqs=required"
    monkeypatch.setenv("BROKER_URL", "amqp://guest@localhost//")
    assert load_settings().celery_broker_url == "amqp://guest@localhost//"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("DATABASE_URL", "mysql://x"),
        ("REDIS_URL", "http://cache"),
        ("POLL_INTERVAL_SECONDS", "-1"),
        ("SLA_SECONDS", "P1=900"),
        ("URGENCY_THRESHOLDS", "0.2,0.5,0.7"),
        ("LOG_LEVEL", "LOUD"),
        ("SCORING_QUANTIZE", "int4"),
    ],
)
def test_a_bad_value_stops_start_up_with_a_message_naming_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_settings()


def test_lists_and_maps_are_parsed(monkeypatch):
    monkeypatch.setenv("SLA_SECONDS", "P1=60,P2=120,P3=180,P4=240")
    monkeypatch.setenv("URGENCY_THRESHOLDS", "0.9,0.6,0.3")
    monkeypatch.setenv("REPLAY_FILES", "a.csv,b.csv")
    s = load_settings()
    assert s.sla_seconds == {"P1": 60, "P2": 120, "P3": 180, "P4": 240}
    assert s.urgency_thresholds == (0.9, 0.6, 0.3)
    assert [p.name for p in s.replay_files] == ["a.csv", "b.csv"]


def test_the_cli_prints_the_variable_and_exits_non_zero(monkeypatch, tmp_path):
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "PORT": "nope", "SOCIALCARE_DATA_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "socialcare", "latency"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "PORT" in out.stderr and "Traceback" not in out.stderr
