"""Serving the web app under uvicorn, as `socialcare web` (the Procfile's web process) and the
main job's web child do."""

from __future__ import annotations

from types import FrameType

from socialcare.config import get_settings

GRACE_SECONDS = 25  # a platform kills a process 30 s after SIGTERM


def serve(port: int | None = None, *, grace: float = GRACE_SECONDS) -> None:
    """Serve until SIGINT or SIGTERM. The stop signal also ends every open event stream (within
    a second), so browsers that keep /api/stream open never hold the shutdown; requests in
    flight get grace seconds to finish."""
    import uvicorn

    from socialcare.logs import configure_logging
    from socialcare.web.app import create_app

    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_format == "json")
    app = create_app(settings)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            app.state.closing = True  # /api/stream ends its loop on this
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app,
        host="0.0.0.0",
        port=port or settings.port,
        log_config=None,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=max(1, round(grace)),
    )
    Server(config).run()
