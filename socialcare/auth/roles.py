"""Roles and permissions: pure, no I/O. Each permission names the least role that holds it."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    AGENT = "agent"
    LEAD = "lead"
    ADMIN = "admin"


ROLES = tuple(r.value for r in Role)
_RANK = {Role.AGENT: 0, Role.LEAD: 1, Role.ADMIN: 2}


class Permission(StrEnum):
    QUEUE_READ = "queue.read"  # the queue, cases, their threads
    CASE_WORK = "case.work"  # claim, reply, note, escalate, resolve, dismiss (cases one holds)
    CASE_OVERRIDE = "case.override"  # act on a case someone else holds, release claims
    FLOOR_READ = "floor.read"  # who holds what, what is about to breach
    AUDIT_READ = "audit.read"  # case histories and the audit log
    REPORTS_READ = "reports.read"  # latency, reports, metrics
    CANNED_MANAGE = "canned.manage"  # canned replies
    SOURCES_READ = "sources.read"  # ingestion health of the polled accounts, incidents
    PEOPLE_MANAGE = "people.manage"  # agents, teams, other people's tokens
    SURGE_READ = "surge.read"  # surge incidents: their cases, posts and timeline
    SURGE_MANAGE = "surge.manage"  # acknowledge, answer everyone at once, resolve a surge


LEAST_ROLE: dict[Permission, Role] = {
    Permission.QUEUE_READ: Role.AGENT,
    Permission.CASE_WORK: Role.AGENT,
    Permission.CASE_OVERRIDE: Role.LEAD,
    Permission.FLOOR_READ: Role.LEAD,
    Permission.AUDIT_READ: Role.LEAD,
    Permission.REPORTS_READ: Role.LEAD,
    Permission.CANNED_MANAGE: Role.LEAD,
    Permission.SOURCES_READ: Role.LEAD,
    Permission.PEOPLE_MANAGE: Role.ADMIN,
    Permission.SURGE_READ: Role.AGENT,
    Permission.SURGE_MANAGE: Role.LEAD,
}


def parse_role(value: str) -> Role:
    """The role named value; ValueError naming the roles otherwise."""
    try:
        return Role(value.strip().lower())
    except ValueError:
        raise ValueError(f"role must be one of {', '.join(ROLES)} (got {value!r})") from None


def allows(role: str, permission: Permission) -> bool:
    """Whether role holds permission (an unknown role holds nothing)."""
    try:
        rank = _RANK[Role(role)]
    except ValueError:
        return False
    return rank >= _RANK[LEAST_ROLE[permission]]
