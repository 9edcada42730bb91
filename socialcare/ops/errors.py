"""Optional error reporting to Sentry (SENTRY_DSN): exceptions and error logs from the web app,
workers and beat. Off unless the setting is given; privacy first: no local variables, no request
bodies, no personal data (post texts stay out of reports as they stay out of logs)."""

from __future__ import annotations

import logging
from importlib import metadata

from socialcare.config import Settings
from socialcare.errors import ConfigError

log = logging.getLogger(__name__)
_started: set[str] = set()


def init_error_reporting(settings: Settings, *, component: str) -> bool:
    """Start Sentry once per process when SENTRY_DSN is set; True when it reports."""
    if not settings.sentry_dsn:
        return False
    if settings.sentry_dsn in _started:
        return True
    try:
        import sentry_sdk
        from sentry_sdk.integrations.celery import CeleryIntegration
        from sentry_sdk.integrations.logging import LoggingIntegration
    except ImportError:
        raise ConfigError(
            "SENTRY_DSN is set but the sentry-sdk package is missing: "
            "pip install 'socialcare[sentry]'"
        ) from None
    try:
        release = metadata.version("socialcare")
    except metadata.PackageNotFoundError:
        release = None
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.sentry_environment,
        release=release,
        server_name=component,
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        traces_sample_rate=0.0,
        integrations=[
            LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
            CeleryIntegration(monitor_beat_tasks=False),
        ],
    )
    sentry_sdk.set_tag("component", component)
    _started.add(settings.sentry_dsn)
    log.info("error reporting to Sentry is on (%s)", component)
    return True
