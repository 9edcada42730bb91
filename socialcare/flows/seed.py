"""First-start setup shared by the CLI and the main job: teams, a demo agent, the feed account."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from socialcare.config import Settings
from socialcare.people import service as people
from socialcare.people.models import Agent
from socialcare.posts.models import Account
from socialcare.posts.service import ensure_account
from socialcare.routing.service import ensure_default_teams


def add_agent(
    *, session: Session, handle: str, display_name: str, role: str, teams: list[str] | None
) -> Agent:
    """A person seeded without a password (they log in once one is set), in the named teams
    (every team when None), added through the one people service: Conflict for a taken
    handle, NotFound for an unknown team, audited."""
    all_teams = ensure_default_teams(session=session)
    names = [t.name for t in all_teams] if teams is None else teams
    agent, _ = people.add_agent(
        session=session,
        handle=handle,
        display_name=display_name,
        role=role,
        teams=names,
        actor="setup",
        can_log_in=False,
    )
    return agent


def ensure_demo_agent(*, session: Session) -> Agent | None:
    """With no agents at all, one lead in every team so the queue can be worked at once."""
    if session.execute(select(Agent.id).limit(1)).first() is not None:
        return None
    return add_agent(
        session=session, handle="demo", display_name="Demo Lead", role="lead", teams=None
    )


def ensure_replay_feed(
    *,
    session: Session,
    files: list[Path],
    speedup: float,
    today: bool = False,
    backfill_seconds: float = 0.0,
) -> Account:
    """The replay feed account for these files (one per set of files). today: on today's clock
    at the posts' own pace (speedup 1), the first backfill_seconds loaded at once as the hours
    before now (sources/replay.py); otherwise on their original clock, speedup times faster."""
    resolved = [str(Path(f).resolve()) for f in files]
    name = "replay:" + "+".join(Path(f).stem for f in resolved)
    clock = {"today": True, "backfill_seconds": backfill_seconds, "speedup": 1.0}
    wanted = clock if today else {"today": False, "speedup": speedup}
    account = ensure_account(
        session=session,
        platform="twcs",
        handle=name[:64],
        source="replay",
        polled=True,
        config={"files": resolved, **wanted},
    )
    account.config = {**account.config, "files": resolved, **wanted, "polled": True}
    return account


def ensure_x_account(*, session: Session, settings: Settings) -> Account:
    """The X account named by X_BRAND_HANDLE."""
    handle = settings.x_brand_handle.lstrip("@")
    return ensure_account(session=session, platform="x", handle=handle, source="x", polled=True)
