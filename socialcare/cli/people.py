"""`socialcare agents ...` and `socialcare teams ...`: people, their logins and tokens, teams."""

from __future__ import annotations

import typer
from sqlalchemy import select

from socialcare.cases.events import record
from socialcare.db import session_scope
from socialcare.display import one_line
from socialcare.errors import NotFound

agents_app = typer.Typer(help="Care agents, leads and admins.", no_args_is_help=True)
teams_app = typer.Typer(help="Care teams.", no_args_is_help=True)


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

    from socialcare.people.service import add_agent
    from socialcare.routing.service import ensure_default_teams

    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    with session_scope() as session:
        every = [t.name for t in ensure_default_teams(session=session)]
        _, generated = add_agent(
            session=session,
            handle=handle,
            display_name=name or handle,
            role=role,
            password=password,
            teams=list(team) or every,
            actor="cli",
        )
    typer.echo(f"{role} {handle} added")
    if generated is not None:
        typer.echo(f"password (shown once): {generated}")


@agents_app.command("password")
def agents_password(
    handle: str,
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read it from stdin"),
) -> None:
    """Set a new password (generated unless read from stdin); ends the agent's sessions."""
    import sys

    from socialcare.auth.passwords import generate_password
    from socialcare.cases.work import get_agent
    from socialcare.people.service import set_password

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


@agents_app.command("languages")
def agents_languages(
    handle: str,
    codes: list[str] = typer.Argument(None, help="ISO 639-1 codes, e.g. fa ru (or fa,ru)"),
    clear: bool = typer.Option(False, help="the agent reads what their teams read"),
) -> None:
    """Show or set the languages an agent reads (their teams read them too)."""
    from socialcare.cases.work import get_agent

    languages = _codes(list(codes or []))
    with session_scope() as session:
        agent = get_agent(session=session, handle=handle)
        if languages or clear:
            agent.languages = languages
            record(
                session,
                actor="cli",
                kind="agent_languages",
                handle=agent.handle,
                languages=languages,
            )
        reads = ", ".join(agent.languages or []) or "what their teams read"
    typer.echo(f"{one_line(handle)} reads {reads}")


def _set_active(handle: str, active: bool) -> None:
    from socialcare.people.service import agent_by_handle, set_active

    with session_scope() as session:
        agent = agent_by_handle(session=session, handle=handle)
        if agent is None:
            raise NotFound(f"no agent {one_line(handle)!r}")
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
    from socialcare.cases.work import get_agent
    from socialcare.people.service import create_token

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
    from socialcare.people.models import Agent

    with session_scope() as session:
        for a in session.execute(select(Agent).order_by(Agent.handle)).scalars():
            teams = ",".join(one_line(t.name) for t in a.teams)
            typer.echo(
                f"{a.handle:<20} {a.role:<6} {'active' if a.active else 'disabled':<9} {teams}"
            )


@teams_app.command("list")
def teams_list() -> None:
    """Teams, their skills and the languages they read."""
    from socialcare.routing.service import ensure_default_teams

    with session_scope() as session:
        for t in ensure_default_teams(session=session):
            reads = ",".join(t.languages or []) or "any"
            typer.echo(f"{one_line(t.name):<12} {one_line(', '.join(t.skills))}  reads: {reads}")


def _codes(values: list[str]) -> list[str]:
    from socialcare.posts.language import language_codes

    try:
        return language_codes(values)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@teams_app.command("languages")
def teams_languages(
    name: str = typer.Argument(..., help="team name"),
    codes: list[str] = typer.Argument(None, help="ISO 639-1 codes, e.g. fa ru (or fa,ru)"),
    any_language: bool = typer.Option(False, "--any", help="the team reads any language"),
) -> None:
    """Show or set the languages a team reads; posts in others go to a team that reads them."""
    from socialcare.people.service import team_named
    from socialcare.routing.service import set_languages

    languages = _codes(list(codes or []))
    if any_language and languages:
        raise typer.BadParameter("give codes or --any, not both")
    with session_scope() as session:
        team = team_named(session=session, name=name)
        if languages or any_language:
            set_languages(session=session, team=team, languages=languages, actor="cli")
        reads = ", ".join(team.languages or []) or "any language"
    typer.echo(f"{one_line(name)} reads {reads}")


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
    from socialcare.people.service import team_named

    settings = get_settings()
    with session_scope() as session:
        team = team_named(session=session, name=name)
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
        typer.echo(f"{one_line(name)}: {one_line(effective.describe())}{source}")


@teams_app.command("add")
def teams_add(name: str) -> None:
    """Add a team (a queue of its own)."""
    from socialcare.people.service import add_team

    with session_scope() as session:
        add_team(session=session, name=name, actor="cli")
    typer.echo(f"team {one_line(name.strip())} added")


def _membership(name: str, handles: list[str], join: bool) -> None:
    from socialcare.people.service import change_members

    with session_scope() as session:
        change_members(session=session, team_name=name, handles=handles, join=join, actor="cli")
    typer.echo(
        f"team {one_line(name)}: {'added' if join else 'removed'} {one_line(', '.join(handles))}"
    )


@teams_app.command("join")
def teams_join(name: str, handles: list[str] = typer.Argument(..., help="agent handles")) -> None:
    """Put agents in a team."""
    _membership(name, handles, True)


@teams_app.command("leave")
def teams_leave(name: str, handles: list[str] = typer.Argument(..., help="agent handles")) -> None:
    """Take agents out of a team."""
    _membership(name, handles, False)
