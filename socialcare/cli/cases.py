"""`socialcare` commands for the care team: queue, claim, reply, resolve, dismiss, escalate.

Every action on a case goes through the service the web API uses (socialcare.cases.actions),
as the agent named by --agent, so the command line is held to the same role rules. What the
service refuses (NotFound, Conflict, Forbidden, bad input) is one line on stderr and a non-zero
exit (socialcare.cli.CareGroup). Everything shown from a post or a person (texts, handles,
names, reasons) is printed inert: control and format characters appear as marks like [ESC].
"""

from __future__ import annotations

from typing import Any

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from socialcare.db import session_scope, utcnow
from socialcare.display import one_line, terminal_safe
from socialcare.errors import NotFound
from socialcare.ids import in_range
from socialcare.people.models import Agent

AGENT = typer.Option(..., "--agent", help="the acting agent's handle")
# A send that did not go out yet but will be tried again (EX_TEMPFAIL).
EX_TEMPFAIL = 75


def _case_id(value: int) -> int:
    """A case id argument: one no case can have is "no case N", never a database error."""
    if not in_range(value):
        raise NotFound(f"no case {value}")
    return value


def _reply_id(value: int) -> int:
    if not in_range(value):
        raise NotFound(f"no reply {value}")
    return value


CASE_ID = typer.Argument(..., metavar="CASE_ID", callback=_case_id, show_default=False)
REPLY_ID = typer.Argument(..., metavar="REPLY_ID", callback=_reply_id, show_default=False)


def _agent(session: Session, handle: str) -> Agent:
    from socialcare.cases.work import get_agent

    return get_agent(session=session, handle=handle)


def _team(session: Session, name: str) -> str:
    """A team that exists, by name; NotFound naming the teams there are (nothing is created)."""
    from socialcare.people.models import Team

    names = list(session.execute(select(Team.name).order_by(Team.name)).scalars())
    if name not in names:
        raise NotFound(f"no team {one_line(name)!r}; teams: {', '.join(map(one_line, names))}")
    return name


def _lease_seconds() -> float:
    from socialcare.config import get_settings

    return get_settings().claim_lease_seconds


def _send(reply_id: int, inline: bool) -> None:
    """Send the reply from this process (and say how it ended), or ask a worker to."""
    if not inline:
        from workers.tasks import enqueue

        try:
            enqueue("send_reply", reply_id)
        except Exception as exc:  # the reply is queued in the database: the sweep sends it
            typer.echo(
                f"reply #{reply_id}: queued; the worker could not be told now "
                f"({one_line(exc)}), the sweep sends it",
                err=True,
            )
            return
        typer.echo(f"reply #{reply_id}: queued for the worker")
        return
    from socialcare.cases.models import Reply
    from socialcare.flows import InlineRunner, send_reply

    runner = InlineRunner()
    send_reply(reply_id, enqueue=runner)
    runner.drain()
    with session_scope() as session:
        row = session.get(Reply, reply_id)
        assert row is not None
        state, error, retry_at = row.state, row.last_error, row.next_attempt_at
    if state == "sent":
        typer.echo(f"reply #{reply_id}: sent")
        return
    why = one_line(error or "no reason recorded")
    if state == "queued":  # a transient failure: tried again later by the sweep
        typer.echo(f"error: reply #{reply_id} not sent yet (again at {retry_at}): {why}", err=True)
        raise typer.Exit(EX_TEMPFAIL)
    typer.echo(f"error: reply #{reply_id} {state}: {why}", err=True)
    raise typer.Exit(1)


def queue(
    team: str | None = typer.Option(None, help="only this team's queue"),
    limit: int = typer.Option(20, min=1),
) -> None:
    """Open cases in queue order, with their urgency and reasons."""
    from socialcare.web.queries import queue_rows

    with session_scope() as session:
        if team is not None:
            _team(session, team)
        rows, total = queue_rows(session, now=utcnow(), team=team, limit=limit)
    for r in rows:
        typer.echo(
            f"#{r.id:<6} {r.priority} {r.urgency:.2f} {r.status:<9} {one_line(r.team or '-'):<8} "
            f"@{one_line(r.customer_handle):<16} {one_line(r.topic or '-'):<9} {r.sla_label}"
        )
        typer.echo(f"        {one_line(r.text)[:110]}")
    typer.echo(f"{len(rows)} of {total} open cases")


def claim_next(
    agent: str = AGENT, team: str | None = typer.Option(None, help="claim from this team")
) -> None:
    """Claim the top case of your teams' queues (atomically: nobody else gets it)."""
    from socialcare.cases import actions

    with session_scope() as session:
        who = _agent(session, agent)
        if team is not None:
            _team(session, team)
        case = actions.claim_next(
            session=session, agent=who, team=team, lease_seconds=_lease_seconds()
        )
        if case is None:
            typer.echo("the queue is empty", err=True)
            raise typer.Exit(1)
        typer.echo(f"claimed case #{case.id} ({case.priority}, @{one_line(case.customer_handle)})")


def claim(case_id: int = CASE_ID, agent: str = AGENT) -> None:
    """Claim one case."""
    from socialcare.cases import actions

    with session_scope() as session:
        case = actions.claim(
            session=session,
            agent=_agent(session, agent),
            case_id=case_id,
            lease_seconds=_lease_seconds(),
        )
        typer.echo(f"claimed case #{case.id}")


def show(case_id: int = CASE_ID) -> None:
    """A case: its thread in order, scores and reasons, replies."""
    from socialcare.cases.models import Reply
    from socialcare.cases.service import case_posts
    from socialcare.cases.work import get_case
    from socialcare.posts.models import Score

    with session_scope() as session:
        case = get_case(session=session, case_id=case_id)
        typer.echo(
            f"case #{case.id} {case.status} {case.priority} urgency {case.urgency:.2f} "
            f"topic {one_line(case.topic)} opened {case.opened_at:%Y-%m-%d %H:%M:%S}Z "
            f"first response {case.first_response_at or '-'}"
        )
        for post in case_posts(session=session, case_id=case_id):
            who = "BRAND" if post.is_brand else "@" + one_line(post.author_handle)
            text = terminal_safe(post.text).replace("\n", "\n      ")
            typer.echo(f"  {post.created_at:%Y-%m-%d %H:%M:%S} {who}: {text}")
            score = session.execute(
                select(Score).where(Score.post_id == post.id)
            ).scalar_one_or_none()
            if score is not None:
                reasons = ", ".join(
                    one_line(f"{r['signal']}={r['value']}x{r['weight']}") for r in score.reasons
                )
                typer.echo(f"      {score.sentiment} urgency {score.urgency:.2f}: {reasons}")
        for reply in session.execute(select(Reply).where(Reply.case_id == case_id)).scalars():
            typer.echo(
                f"  reply #{reply.id} {reply.state}: {one_line(reply.text)} "
                f"{one_line(reply.last_error or '')}".rstrip()
            )


def reply(
    case_id: int = CASE_ID,
    agent: str = AGENT,
    text: str = typer.Option(..., "--text"),
    inline: bool = typer.Option(False, help="send from this process instead of the worker"),
) -> None:
    """Reply publicly to the customer's latest post (sent once, through the case's platform).

    With --inline the command exits 0 only when the reply was published: 1 when it failed or
    its outcome is unknown, 75 when it will be tried again later."""
    from socialcare.cases import actions

    with session_scope() as session:
        row = actions.reply(
            session=session, agent=_agent(session, agent), case_id=case_id, text=text
        )
        reply_id = row.id
    _send(reply_id, inline)


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
                f"{kind}: {one_line(r.last_error or '-')}"
            )
    if not count:
        typer.echo(f"no replies {' or '.join(one_line(s) for s in state)}")


def reply_retry(
    reply_id: int = REPLY_ID,
    agent: str = AGENT,
    inline: bool = typer.Option(False, help="send from this process instead of the worker"),
) -> None:
    """Send a failed reply again (never one whose outcome is unknown: that is reconciled)."""
    from socialcare.cases import actions

    with session_scope() as session:
        actions.retry_reply(session=session, agent=_agent(session, agent), reply_id=reply_id)
    _send(reply_id, inline)


def _close(case_id: int, agent: str, status: str, reason: str) -> None:
    from socialcare.cases import actions

    with session_scope() as session:
        actions.close(
            session=session,
            agent=_agent(session, agent),
            case_id=case_id,
            status=status,
            reason=reason,
        )
    typer.echo(f"case #{case_id} {status}")


def resolve(
    case_id: int = CASE_ID, agent: str = AGENT, reason: str = typer.Option("answered")
) -> None:
    """Resolve a case you hold (leads: any open case)."""
    _close(case_id, agent, "resolved", reason)


def dismiss(case_id: int = CASE_ID, agent: str = AGENT, reason: str = typer.Option(...)) -> None:
    """Dismiss a case that needs no answer (spam, not for us), with a reason."""
    _close(case_id, agent, "dismissed", reason)


def escalate(
    case_id: int = CASE_ID,
    agent: str = AGENT,
    team: str = typer.Option("swat", help="a team that exists (see `socialcare teams list`)"),
    reason: str = typer.Option(...),
) -> None:
    """Send a case to another team's queue one priority higher."""
    from socialcare.cases import actions

    with session_scope() as session:
        who = _agent(session, agent)
        _team(session, team)
        case = actions.escalate(
            session=session, agent=who, case_id=case_id, reason=reason, team=team
        )
        typer.echo(f"case #{case_id} escalated to {one_line(team)} as {case.priority}")


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
