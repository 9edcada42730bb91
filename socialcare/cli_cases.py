"""`socialcare` commands for the care team: queue, claim, reply, resolve, dismiss, escalate."""

from __future__ import annotations

from typing import Any

import typer
from sqlalchemy import select

from socialcare.cli_people import register as register_people
from socialcare.db import session_scope, utcnow

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
    register_people(app)
