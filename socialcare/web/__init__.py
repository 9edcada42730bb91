"""The web front end (FastAPI, server-rendered pages)."""

from socialcare.web.app import create_app

__all__ = ["create_app"]
