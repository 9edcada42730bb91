"""Celery workers and beat for socialcare."""
