"""`socialcare` commands for the care team: queue, claim, reply, resolve, dismiss, escalate."""

from __future__ import annotations

from typing import Any

import typer
from sqlalchemy import select

from socialcare.db import session_scope, utcnow

agents_app = typer.Typer(help="Care agents.", no_args_is_help=True)
teams_app = typer.Typer(help="Care teams.", no_args_is_help=True)

AGENT = typer.Option(..., "--agent", help="the acting agent's handle")


def _enqueue_send(reply_id: int, inline: bool) -> str:
    if inline:
        from socialcare.flows import InlineRunner, send_reply

        runner = InlineRunner()
        state = send_reply(reply_id, enqueue=runner)
        runner.drain()
        return state
    from workers.tasks import enqueue

    enqueue("send_reply", reply_id)
    return "queued for the worker"


def queue(
    team: str | None = typer.Option(None, help="only this team's queue"),
    limit: int = typer.Option(20, min=1),
) -> None:
    """Open cases in queue order, with their urgency and reasons."""
    from socialcare.web.queries import queue_rows

    with session_scope() as session:
        rows, total = queue_rows(session, now=utcnow(), team=team, limit=limit)
    for r in rows:
        typer.echo(
            f"#{r.id:<6} {r.priority} {r.urgency:.2f} {r.status:<9} {r.team or '-':<8} "
            f"@{r.customer_handle:<16} {r.topic or '-':<9} {r.sla_label}"
        )
        typer.echo(f"        {r.text[:110]}")
    typer.echo(f"{len(rows)} of {total} open cases")


def claim_next(
    agent: str = AGENT, team: str | None = typer.Option(None, help="claim from this team")
) -> None:
    """Claim the top case of your teams' queues (atomically: nobody else gets it)."""
    from socialcare.cases.work import claim_next as claim_next_case
    from socialcare.cases.work import get_agent
    from socialcare.routing.service import team_by_name

    with session_scope() as session:
        who = get_agent(session=session, handle=agent)
        team_id = team_by_name(session=session, name=team).id if team else None
        case = claim_next_case(session=session, agent=who, team_id=team_id)
        if case is None:
            typer.echo("the queue is empty")
            raise typer.Exit(1)
        typer.echo(f"claimed case #{case.id} ({case.priority}, @{case.customer_handle})")


def claim(case_id: int, agent: str = AGENT) -> None:
    """Claim one case."""
    from socialcare.cases.work import claim as claim_case
    from socialcare.cases.work import get_agent

    with session_scope() as session:
        case = claim_case(
            session=session, case_id=case_id, agent=get_agent(session=session, handle=agent)
        )
        typer.echo(f"claimed case #{case.id}")


def show(case_id: int) -> None:
    """A case: its thread in order, scores and reasons, replies."""
    from socialcare.cases.models import Reply
    from socialcare.cases.service import case_posts
    from socialcare.cases.work import get_case
    from socialcare.posts.models import Score

    with session_scope() as session:
        case = get_case(session=session, case_id=case_id)
        typer.echo(
            f"case #{case.id} {case.status} {case.priority} urgency {case.urgency:.2f} "
            f"topic {case.topic} opened {case.opened_at:%Y-%m-%d %H:%M:%S}Z "
            f"first response {case.first_response_at or '-'}"
        )
        for post in case_posts(session=session, case_id=case_id):
            who = "BRAND" if post.is_brand else "@" + post.author_handle
            typer.echo(f"  {post.created_at:%Y-%m-%d %H:%M:%S} {who}: {post.text}")
            score = session.execute(
                select(Score).where(Score.post_id == post.id)
            ).scalar_one_or_none()
            if score is not None:
                reasons = ", ".join(
                    f"{r['signal']}={r['value']}x{r['weight']}" for r in score.reasons
                )
                typer.echo(f"      {score.sentiment} urgency {score.urgency:.2f}: {reasons}")
        for reply in session.execute(select(Reply).where(Reply.case_id == case_id)).scalars():
            typer.echo(f"  reply #{reply.id} {reply.state}: {reply.text} {reply.last_error or ''}")


def reply(
    case_id: int,
    agent: str = AGENT,
    text: str = typer.Option(..., "--text"),
    inline: bool = typer.Option(False, help="send from this process instead of the worker"),
) -> None:
    """Reply publicly to the customer's latest post (sent once, through the case's platform)."""
    from socialcare.cases.outbox import create_reply
    from socialcare.cases.work import get_agent

    with session_scope() as session:
        row = create_reply(
            session=session,
            case_id=case_id,
            agent=get_agent(session=session, handle=agent),
            text=text,
        )
        reply_id = row.id
    typer.echo(f"reply #{reply_id}: {_enqueue_send(reply_id, inline)}")


def replies(
    state: list[str] = typer.Option(
        ["failed", "unknown"], "--state", help="states to list (repeat; default failed, unknown)"
    ),
    limit: int = typer.Option(50, min=1),
) -> None:
    """Replies in the given states, newest first: what needs a person (failed, unknown)."""
    from socialcare.cases.models import Reply

    with session_scope() as session:
        rows = session.execute(
            select(Reply)
            .where(Reply.state.in_(state))
            .order_by(Reply.created_at.desc(), Reply.id.desc())
            .limit(limit)
        ).scalars()
        count = 0
        for r in rows:
            count += 1
            kind = " (acknowledgement)" if r.kind == "ack" else ""
            typer.echo(
                f"reply #{r.id:<6} case #{r.case_id:<6} {r.state:<8} attempts {r.attempts}"
                f"{kind}: {r.last_error or '-'}"
            )
    if not count:
        typer.echo(f"no replies {' or '.join(state)}")


def reply_retry(
    reply_id: int,
    agent: str = AGENT,
    inline: bool = typer.Option(False, help="send from this process instead of the worker"),
) -> None:
    """Send a failed reply again (never one whose outcome is unknown: that is reconciled)."""
    from socialcare.cases.outbox import retry_reply
    from socialcare.cases.work import get_agent
    from socialcare.errors import Conflict, NotFound

    with session_scope() as session:
        try:
            retry_reply(
                session=session, reply_id=reply_id, agent=get_agent(session=session, handle=agent)
            )
        except (Conflict, NotFound) as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
    typer.echo(f"reply #{reply_id}: {_enqueue_send(reply_id, inline)}")


def _close(case_id: int, agent: str, status: str, reason: str) -> None:
    from socialcare.cases.work import close, get_agent

    with session_scope() as session:
        close(
            session=session,
            case_id=case_id,
            agent=get_agent(session=session, handle=agent),
            status=status,
            reason=reason,
        )
    typer.echo(f"case #{case_id} {status}")


def resolve(case_id: int, agent: str = AGENT, reason: str = typer.Option("answered")) -> None:
    """Resolve a case."""
    _close(case_id, agent, "resolved", reason)


def dismiss(case_id: int, agent: str = AGENT, reason: str = typer.Option(...)) -> None:
    """Dismiss a case that needs no answer (spam, not for us), with a reason."""
    _close(case_id, agent, "dismissed", reason)


def escalate(
    case_id: int,
    agent: str = AGENT,
    team: str = typer.Option("swat"),
    reason: str = typer.Option(...),
) -> None:
    """Send a case to another team's queue one priority higher."""
    from socialcare.cases.work import escalate as escalate_case
    from socialcare.cases.work import get_agent

    with session_scope() as session:
        case = escalate_case(
            session=session,
            case_id=case_id,
            agent=get_agent(session=session, handle=agent),
            team=team,
            reason=reason,
        )
        typer.echo(f"case #{case_id} escalated to {team} as {case.priority}")


@agents_app.command("add")
def agents_add(
    handle: str,
    name: str = typer.Option("", help="display name"),
    role: str = typer.Option("agent", help="agent, lead or admin"),
    team: list[str] = typer.Option([], help="team name (repeat); default: every team"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="read the password from stdin (else one is generated)"
    ),
) -> None:
    """Add a care agent, lead or admin who can log in to the web workspace."""
    import sys

    from socialcare.auth.passwords import generate_password, hash_password
    from socialcare.setup import add_agent

    password = sys.stdin.readline().rstrip("\n") if password_stdin else generate_password()
    with session_scope() as session:
        agent = add_agent(
            session=session,
            handle=handle,
            display_name=name or handle,
            role=role,
            teams=list(team) or None,
        )
        agent.password_hash = hash_password(password)
    typer.echo(f"{role} {handle} added")
    if not password_stdin:
        typer.echo(f"password (shown once): {password}")


@agents_app.command("password")
def agents_password(
    handle: str,
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read it from stdin"),
) -> None:
    """Set a new password (generated unless read from stdin); ends the agent's sessions."""
    import sys

    from socialcare.auth.passwords import generate_password
    from socialcare.auth.service import set_password
    from socialcare.cases.work import get_agent

    password = sys.stdin.readline().rstrip("\n") if password_stdin else generate_password()
    with session_scope() as session:
        set_password(
            session=session,
            agent=get_agent(session=session, handle=handle),
            password=password,
            actor="cli",
        )
    typer.echo(f"password of {handle} set")
    if not password_stdin:
        typer.echo(f"password (shown once): {password}")


def _set_active(handle: str, active: bool) -> None:
    from socialcare.auth.service import set_active
    from socialcare.routing.models import Agent

    with session_scope() as session:
        agent = session.execute(select(Agent).where(Agent.handle == handle)).scalar_one_or_none()
        if agent is None:
            typer.echo(f"no agent {handle!r}", err=True)
            raise typer.Exit(1)
        set_active(session=session, agent=agent, active=active, actor="cli")
    typer.echo(f"agent {handle} {'enabled' if active else 'disabled'}")


@agents_app.command("disable")
def agents_disable(handle: str) -> None:
    """Disable an agent: their sessions end and their API tokens are revoked."""
    _set_active(handle, False)


@agents_app.command("enable")
def agents_enable(handle: str) -> None:
    """Let a disabled agent log in again."""
    _set_active(handle, True)


@agents_app.command("token")
def agents_token(handle: str, name: str = typer.Option(..., help="what the token is for")) -> None:
    """Create an API token acting as the agent (printed once)."""
    from socialcare.auth.service import create_token
    from socialcare.cases.work import get_agent

    with session_scope() as session:
        secret, _ = create_token(
            session=session,
            agent=get_agent(session=session, handle=handle),
            name=name,
            actor="cli",
        )
    typer.echo(secret)


@agents_app.command("list")
def agents_list() -> None:
    """Agents and their teams."""
    from socialcare.routing.models import Agent

    with session_scope() as session:
        for a in session.execute(select(Agent).order_by(Agent.handle)).scalars():
            teams = ",".join(t.name for t in a.teams)
            typer.echo(
                f"{a.handle:<20} {a.role:<6} {'active' if a.active else 'disabled':<9} {teams}"
            )


@teams_app.command("list")
def teams_list() -> None:
    """Teams and their skills."""
    from socialcare.routing.service import ensure_default_teams

    with session_scope() as session:
        for t in ensure_default_teams(session=session):
            typer.echo(f"{t.name:<12} {', '.join(t.skills)}")


@teams_app.command("calendar")
def teams_calendar(
    name: str = typer.Argument(..., help="team name"),
    hours: str = typer.Option("", help="working days and hours, e.g. 'mon-fri 08:00-20:00'"),
    tz: str = typer.Option("", "--tz", help="IANA time zone of those hours"),
    holidays: str = typer.Option(
        "", help="public holidays: ISO country[-subdivision], e.g. GB-ENG"
    ),
    clear: bool = typer.Option(False, help="use the BUSINESS_* settings again"),
) -> None:
    """Show or set a team's business hours (for the business/off-hours latency split)."""
    from socialcare.config import get_settings
    from socialcare.errors import ConfigError
    from socialcare.metrics.calendar import BusinessCalendar
    from socialcare.routing.models import Team

    settings = get_settings()
    with session_scope() as session:
        team = session.execute(select(Team).where(Team.name == name)).scalar_one_or_none()
        if team is None:
            raise typer.BadParameter(f"no team {name!r}", param_hint="NAME")
        calendar = {} if clear else dict(team.calendar or {})
        for key, value in (("hours", hours), ("tz", tz), ("holidays", holidays)):
            if value:
                calendar[key] = value
        try:
            effective = BusinessCalendar.for_team(name, calendar, settings)
        except ConfigError as exc:
            raise typer.BadParameter(str(exc)) from None
        team.calendar = calendar
        source = "" if calendar else " (from the BUSINESS_* settings)"
        typer.echo(f"{name}: {effective.describe()}{source}")


def register(app: Any) -> None:
    """Add the care-team commands to the main CLI."""
    for fn in (
        queue,
        claim_next,
        claim,
        show,
        reply,
        replies,
        reply_retry,
        resolve,
        dismiss,
        escalate,
    ):
        app.command(fn.__name__.replace("_", "-"))(fn)
    app.add_typer(agents_app, name="agents")
    app.add_typer(teams_app, name="teams")
