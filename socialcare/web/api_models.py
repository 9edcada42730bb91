"""The JSON API's request and response bodies (they make its OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

from socialcare.web.queries import QueueRow


class ErrorOut(BaseModel):
    detail: str


class Me(BaseModel):
    handle: str
    display_name: str
    role: str
    teams: list[str]
    permissions: list[str]


class CaseOut(BaseModel):
    id: int
    platform: str
    status: str
    priority: str
    urgency: float
    topic: str | None
    team: str | None
    customer_handle: str
    claimed_by: str | None
    claim_expires_at: datetime | None
    opened_at: datetime
    sla_due_at: datetime | None
    first_response_at: datetime | None
    first_response_via: str | None
    needs_lead: bool
    escalated: bool
    closed_at: datetime | None
    close_reason: str | None
    language: str | None = None  # of the first post: ISO 639-1, "und", or null (not detected)
    waiting_since: datetime | None = None  # the customer's current wait began (queue order)
    reply_due_at: datetime | None = None  # next-reply SLA due while they wait again


class PostOut(BaseModel):
    id: int
    external_id: str
    author_handle: str
    is_brand: bool
    text: str
    created_at: datetime
    in_reply_to_external_id: str | None
    language: str | None = None


class ReplyOut(BaseModel):
    id: int
    case_id: int
    kind: str
    state: str
    text: str
    attempts: int
    last_error: str | None
    external_id: str | None
    url: str | None
    sent_at: datetime | None
    created_at: datetime


class EventOut(BaseModel):
    id: int
    at: datetime
    actor: str
    kind: str
    case_id: int | None
    reply_id: int | None
    data: dict[str, Any]


class CaseDetailOut(BaseModel):
    case: CaseOut
    posts: list[PostOut]
    replies: list[ReplyOut]
    notes: list[EventOut]
    earlier: list[CaseOut]
    reasons: list[str]
    viewers: list[str]
    reply_limit: int
    history: list[EventOut] | None = None  # leads and admins only


class In(BaseModel):
    """A request body. No text in it may hold a NUL character: PostgreSQL cannot store one."""

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        items = value if isinstance(value, list) else [value]
        if any(isinstance(item, str) and "\x00" in item for item in items):
            raise ValueError("text may not contain NUL characters")
        return value


class TextIn(In):
    text: str = Field(..., max_length=20000)


class ReasonIn(In):
    reason: str = Field(..., max_length=5000)


class EscalateIn(In):
    reason: str = Field(..., max_length=5000)
    team: str | None = Field(None, max_length=64)
    to_lead: bool = False


class NextIn(In):
    team: str | None = Field(None, max_length=64)


class HeartbeatIn(In):
    active: bool = True


class CannedIn(In):
    name: str = Field(..., max_length=128)
    text: str = Field(..., max_length=5000)
    team: str | None = Field(None, max_length=64)


class CannedOut(BaseModel):
    id: int
    name: str
    text: str
    team: str | None
    filled: str | None = None  # with the case's variables, when asked for a case


class AgentIn(In):
    handle: str = Field(..., max_length=64)
    role: str = "agent"
    display_name: str | None = Field(None, max_length=128)
    password: str | None = Field(None, max_length=1024)
    teams: list[str] = []


class AgentOut(BaseModel):
    handle: str
    display_name: str
    role: str
    active: bool
    teams: list[str]
    last_login_at: datetime | None


class AgentCreated(AgentOut):
    password: str | None = None  # the generated one, shown once


class TeamIn(In):
    name: str = Field(..., max_length=64)


class MembersIn(In):
    handles: list[str]


class TeamOut(BaseModel):
    name: str
    members: list[str]


class TokenIn(In):
    name: str = Field(..., max_length=128)
    expires_in_days: int = Field(90, ge=1, le=365, description="how long the token is valid")


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    agent: str  # whose token it is (the handle it acts as)
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str  # shown once


class SourceAccountOut(BaseModel):
    """One polled account's ingestion health (what `socialcare sources status` prints)."""

    id: int
    platform: str
    handle: str
    state: str  # ok, late, failing, paused, inactive
    posts: int
    last_hour: int
    last_poll: datetime | None
    lag_s: int | None  # now minus the newest post's public time
    requests_left: int | None
    reset: datetime | None
    reads_today: int
    reads_month: int
    projected_cost: float | None  # this month's billed reads extrapolated, in USD (X only)
    incidents: list[str]  # kinds of the open incidents
    last_error: str | None


class IncidentOut(BaseModel):
    id: int
    account_id: int
    platform: str
    handle: str
    kind: str
    severity: str
    detail: str
    opened_at: datetime
    resolved_at: datetime | None


class SourcesOut(BaseModel):
    accounts: list[SourceAccountOut]
    incidents: list[IncidentOut]  # open ones first, then the last 7 days', newest first


class FloorOut(BaseModel):
    held: list[QueueRow]
    soon: list[QueueRow]
    asked: list[QueueRow]
    per_agent: dict[str, int]
    by_language: dict[str, int] = {}  # open cases per language of their first post
