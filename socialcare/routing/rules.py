"""Routing rules: which team's queue a case goes to. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TEAMS: dict[str, list[str]] = {
    "swat": ["escalations", "high-visibility", "safety", "legal"],
    "tech": ["outage", "security"],
    "billing": ["billing"],
    "care": ["general", "delivery", "question"],
}
PRIORITY_ORDER = ("P1", "P2", "P3", "P4")
# What the default teams read until told otherwise (`socialcare teams languages`).
DEFAULT_LANGUAGES = ("en",)


def _rank(priority: str) -> int:
    """0 for P1 (most urgent) to 3 for P4; anything else ranks after P4."""
    return PRIORITY_ORDER.index(priority) if priority in PRIORITY_ORDER else len(PRIORITY_ORDER)


@dataclass(frozen=True)
class RouteInput:
    topic: str
    priority: str
    urgency: float
    followers: int | None
    verified: bool
    # ISO 639-1 code of the post's language, "und" when it could not be told, None when not
    # detected: only socialcare.routing.service.choose_team reads it, after the rules.
    language: str | None = None


@dataclass(frozen=True)
class Rule:
    """When every given condition holds, the case goes to team. None means any."""

    name: str
    team: str
    topics: tuple[str, ...] | None = None
    max_priority: str | None = None  # this priority or more urgent
    min_followers: int | None = None
    verified: bool | None = None

    def __post_init__(self) -> None:
        if self.max_priority is not None and self.max_priority not in PRIORITY_ORDER:
            raise ValueError(
                f"rule {self.name!r}: max_priority must be one of {', '.join(PRIORITY_ORDER)},"
                f" not {self.max_priority!r}"
            )

    def matches(self, inp: RouteInput) -> bool:
        """Whether every condition holds; an unknown priority meets no max_priority."""
        if self.topics is not None and inp.topic not in self.topics:
            return False
        if self.max_priority is not None and _rank(inp.priority) > _rank(self.max_priority):
            return False
        if self.min_followers is not None and (inp.followers or 0) < self.min_followers:
            return False
        return self.verified is None or inp.verified == self.verified


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("urgent goes to swat", "swat", max_priority="P1"),
    Rule("safety and legal go to swat", "swat", topics=("safety", "legal")),
    Rule("large verified audiences go to swat", "swat", min_followers=100_000, verified=True),
    Rule("outages and access to tech", "tech", topics=("outage", "security")),
    Rule("money to billing", "billing", topics=("billing",)),
)
FALLBACK_TEAM = "care"


def route(inp: RouteInput, rules: tuple[Rule, ...] = DEFAULT_RULES) -> tuple[str, str]:
    """(team, name of the rule that chose it); the first matching rule wins."""
    for rule in rules:
        if rule.matches(inp):
            return rule.team, rule.name
    return FALLBACK_TEAM, "fallback"


def more_urgent(a: str, b: str) -> str:
    """The more urgent of two priorities (the first of equals)."""
    return a if PRIORITY_ORDER.index(a) <= PRIORITY_ORDER.index(b) else b


def raise_priority(priority: str) -> str:
    """One level more urgent (P1 stays P1): how an overdue case ages.

    Raises ValueError for anything but P1..P4.
    """
    if priority not in PRIORITY_ORDER:
        raise ValueError(f"unknown priority {priority!r}: one of {', '.join(PRIORITY_ORDER)}")
    return PRIORITY_ORDER[max(0, PRIORITY_ORDER.index(priority) - 1)]
