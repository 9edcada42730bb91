"""A surge incident with its customers' posts and cases, as detection and routing leave it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from socialcare.cases.models import Case
from socialcare.config import Settings
from socialcare.posts.models import Account
from socialcare.surge import incidents
from socialcare.surge.models import Surge
from tests.factories import make_account, make_case, make_post

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
OUTAGE = "@acmecare the app will not let me log in, password reset fails too"


@dataclass
class World:
    account: Account
    surge: Surge
    cases: list[Case]


def customer_case(
    session: Session, account: Account, handle: str, text: str = OUTAGE, *, minute: int = 0
) -> Case:
    post = make_post(
        session, account, text, created_at=T0 + timedelta(minutes=minute), author_handle=handle
    )
    return make_case(session, account, post)


def surge_world(
    session: Session, settings: Settings, handles: list[str], *, platform: str = "x"
) -> World:
    """An open surge whose posts were routed into one case per customer handle (committed)."""
    account = make_account(session, "acmecare", platform=platform)
    cases = [customer_case(session, account, h, minute=i) for i, h in enumerate(handles)]
    refs = [
        incidents.SurgePostRef(c.root_post_id, T0 + timedelta(minutes=i), 0.9)
        for i, c in enumerate(cases)
    ]
    candidate = incidents.Candidate(
        key=f"{account.id}:1:0",
        account_id=account.id,
        title="Security: log, password",
        topic="security",
        keywords=["log", "password"],
        started_at=T0,
        count=len(cases),
        rate_per_hour=40.0,
        expected_per_hour=1.0,
        p_value=1e-9,
        posts=refs,
    )
    now = T0 + timedelta(minutes=len(handles))
    surge, _, _ = incidents.open_surge(
        session=session, candidate=candidate, settings=settings, now=now
    )
    incidents.link_cases(session=session, surge_ids=[surge.id], now=now)
    session.commit()
    return World(account, surge, cases)


def join_surge(session: Session, world: World, handle: str, text: str = OUTAGE) -> Case:
    """A customer whose post joins the surge after the send and is routed into a new case,
    then linked as detection links cases (committed)."""
    case = customer_case(session, world.account, handle, text, minute=30)
    now = T0 + timedelta(minutes=31)
    incidents.add_posts(
        session=session,
        surge_id=world.surge.id,
        posts=[incidents.SurgePostRef(case.root_post_id, T0 + timedelta(minutes=30), 0.9)],
        now=now,
    )
    incidents.link_cases(session=session, surge_ids=[world.surge.id], now=now)
    session.commit()
    return case
