"""Imports every model so Base.metadata is complete (Alembic and tests use it)."""

from socialcare.cases.models import Case, Event, Reply
from socialcare.cases.workspace_models import CannedReply, CaseView
from socialcare.db import Base
from socialcare.ingest.models import IngestionIncident, RateLimitState, ReadUsage
from socialcare.leases import Lease, ScheduleRun
from socialcare.metrics.models import DigestDelivery
from socialcare.people.models import Agent, ApiToken, Team, WebSession, agent_teams
from socialcare.posts.models import Account, Post, Score
from socialcare.surge import models as surge_models  # noqa: F401  (the surge tables)

__all__ = [
    "Account",
    "Agent",
    "ApiToken",
    "Base",
    "CannedReply",
    "Case",
    "CaseView",
    "DigestDelivery",
    "Event",
    "IngestionIncident",
    "Lease",
    "Post",
    "RateLimitState",
    "ReadUsage",
    "Reply",
    "ScheduleRun",
    "Score",
    "Team",
    "WebSession",
    "agent_teams",
]
