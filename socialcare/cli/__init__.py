"""The `socialcare` command line: database, main job, imports, polling, latency, models; the
other commands live beside this module (cases, people, languages, sources, digest, history) and
are registered here. `runner` is the main job `socialcare run` starts.

A command that fails prints one line, `error: ...`, on stderr and exits non-zero: 1 when what
it was asked to act on is missing or not in the state the action needs (no such case, someone
else holds it, the role does not allow it, the platform refused), 2 for bad input or settings,
75 (EX_TEMPFAIL) when nothing was done but a later try may work (a poll that made no request).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import typer
from sqlalchemy.exc import OperationalError, ProgrammingError
from typer.core import TyperGroup

# Every model in the metadata, whichever command runs: a flush orders its tables by their
# foreign keys, and one naming a table never imported fails (NoReferencedTableError).
import socialcare.models  # noqa: F401
from socialcare.cli.cases import register as register_case_commands
from socialcare.cli.digest import digest_app
from socialcare.cli.languages import languages_app
from socialcare.cli.people import agents_app, teams_app
from socialcare.cli.sources import add_account, poll_command, sources_app
from socialcare.config import get_settings
from socialcare.display import one_line, terminal_safe
from socialcare.errors import ConfigError, SocialcareError

# Bad input or settings (as click's own usage errors); anything else refused is 1.
USAGE_ERRORS = (ConfigError, ValueError)


def error_line(exc: BaseException) -> str:
    """An error as the one line a command prints: its first line, shown inert."""
    text = str(exc).strip().splitlines()
    return "error: " + (one_line(text[0]) if text else type(exc).__name__)


class CareGroup(TyperGroup):
    """The top-level command group: errors socialcare raises on purpose (and bad input, and a
    database that cannot be used) end the command with one line on stderr, not a traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (SocialcareError, ValueError) as exc:
            typer.echo(error_line(exc), err=True)
            raise typer.Exit(2 if isinstance(exc, USAGE_ERRORS) else 1) from None
        except (OperationalError, ProgrammingError) as exc:
            reason = getattr(exc, "orig", None) or exc
            typer.echo(
                f"{error_line(reason)} (is the database up, and at the latest schema? "
                "`socialcare db upgrade`)",
                err=True,
            )
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=CareGroup,
    help="Social media customer care workers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
import_app = typer.Typer(help="Load posts straight into the database.", no_args_is_help=True)
accounts_app = typer.Typer(help="Monitored brand accounts.", no_args_is_help=True)
model_app = typer.Typer(help="Scoring models.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
app.add_typer(accounts_app, name="accounts")
app.add_typer(model_app, name="model")
app.add_typer(digest_app, name="digest")
app.add_typer(sources_app, name="sources")
accounts_app.command("add")(add_account)
register_case_commands(app)
app.add_typer(agents_app, name="agents")
app.add_typer(teams_app, name="teams")
app.add_typer(languages_app, name="languages")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the latest schema and create the default teams (idempotent)."""
    from socialcare.db import session_scope
    from socialcare.migrations import upgrade
    from socialcare.routing.service import ensure_default_teams

    upgrade(get_settings())
    with session_scope() as session:
        ensure_default_teams(session=session)
    typer.echo("database is at the latest schema")


@import_app.command("twcs")
def import_twcs(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    progress_seconds: float = typer.Option(
        10.0, help="seconds between progress lines when stderr is not a terminal", hidden=True
    ),
    page_rows: int = typer.Option(500, min=1, help="rows stored per transaction", hidden=True),
) -> None:
    """Load TWCS CSV files: posts, scores, cases and first responses, as seen at their times.
    Progress goes to stderr; interrupted (Ctrl-C), the same command resumes where it stopped."""
    from socialcare.cli.history import run_import

    run_import(files, progress_seconds=progress_seconds, page_rows=page_rows)


@accounts_app.command("list")
def accounts_list() -> None:
    """Accounts with their poll state."""
    from sqlalchemy import select

    from socialcare.db import session_scope
    from socialcare.posts.models import Account

    with session_scope() as session:
        for a in session.execute(select(Account).order_by(Account.id)).scalars():
            state = "failing" if a.failing else ("polled" if a.config.get("polled") else "brand")
            typer.echo(
                f"{a.id:>4} {a.platform:<6} {one_line(a.handle):<40} {state:<8} "
                f"{one_line(a.last_error or '')}"
            )


@app.command("poll")
def poll(
    account: str | None = typer.Argument(None, help="account id or handle"),
    account_id: int | None = typer.Option(None, "--account", help="account id"),
    once: bool = typer.Option(True, "--once/--follow", help="poll once, or whenever due"),
) -> None:
    """Poll one account now, in this process, and score and route what it finds."""
    poll_command(account, account_id, once)


@app.command("latency")
def latency(
    by: str = typer.Option(
        "brand", help="brand, team, priority, platform, topic, hour or language"
    ),
    fmt: str = typer.Option("table", "--format", help="table or csv"),
    tz: str = typer.Option("UTC", "--tz", help="time zone of --by hour (IANA name)"),
    unit: str = typer.Option(
        "case", help="case (first response per case) or post (next reply per customer post)"
    ),
) -> None:
    """Latency per group: cases (or customer posts), answered, p50/p90/p95/mean seconds, SLA
    attainment; of each case's first response, or (--unit post) each customer post's wait for
    the brand's next reply."""
    from socialcare.db import session_scope
    from socialcare.metrics.latency import UNIT_TITLES, format_csv, format_table, latency_by

    if fmt not in ("table", "csv"):
        raise ValueError(f"--format is table or csv, not {one_line(fmt)!r}")
    if unit not in UNIT_TITLES:
        raise ValueError(f"--unit is case or post, not {one_line(unit)!r}")
    with session_scope() as session:
        rows = latency_by(session, by=by, tz=tz, unit=unit)
    if fmt == "csv":
        # Every line names its unit (the `unit` column); the CSV is data: its formula cells are
        # neutralised, its text kept as it is.
        typer.echo(format_csv(rows, unit=unit), nl=False)
        return
    # The heading goes to stderr, so the table on stdout stays one header line and its rows.
    typer.echo(f"{UNIT_TITLES[unit]}, by {by}", err=True)
    # A group is a brand's handle or a team's name: what anyone typed, shown inert.
    typer.echo(terminal_safe(format_table(rows, unit=unit)), nl=False)


@model_app.command("train")
def model_train(
    what: str = typer.Argument("sentiment", help="sentiment, sentiment-head or complaint"),
    data: Path = typer.Option(Path("../shared/data"), help="folder with sentiment/, complaints/"),
    out: Path = typer.Option(
        Path(__file__).parent.parent / "scoring" / "models", help="output folder"
    ),
    seed: int = typer.Option(13),
) -> None:
    """Train a built-in model and write it with its metrics and provenance (a .json beside it).

    sentiment: the top encoder layers fine-tuned with a head on SemEval-2017 4A, evaluated on
    TweetEval validation; sentiment-head: a head on the frozen encoder (the same data);
    complaint: the complaint head, chosen and reported by 10-fold cross-validation.
    """
    logging.getLogger("socialcare").setLevel(logging.INFO)
    if what == "sentiment":
        from socialcare.training.finetune import train_finetuned

        metrics = train_finetuned(data_dir=data, out_dir=out, seed=seed)
    elif what == "sentiment-head":
        from socialcare.training.sentiment import train_sentiment

        metrics = train_sentiment(data_dir=data, out_dir=out, seed=seed)
    elif what == "complaint":
        from socialcare.training.complaint import train_complaint

        metrics = train_complaint(data_dir=data, out_dir=out, seed=seed)
    else:
        raise typer.BadParameter("sentiment, sentiment-head or complaint", param_hint="WHAT")
    typer.echo(json.dumps(metrics["metrics"], indent=2))


@model_app.command("eval")
def model_eval(
    what: str = typer.Argument("sentiment", help="sentiment"),
    data: Path = typer.Option(
        ..., exists=True, help="TweetEval folder or *_text.txt file, or a SemEval tab file"
    ),
    model: str | None = typer.Option(
        None, help="SENTIMENT_MODEL value or a built-in head file (default: the setting)"
    ),
    baseline: str | None = typer.Option(None, help="vader: evaluate VADER (compound +-0.05)"),
) -> None:
    """Macro recall, accuracy, per-class recall and confusion matrix on a labelled file."""
    from socialcare.scoring import sentiment
    from socialcare.scoring.base import SentimentModel
    from socialcare.training.evaluate import evaluate_examples, format_report, read_labelled

    if what != "sentiment":
        raise typer.BadParameter("only 'sentiment' can be evaluated", param_hint="WHAT")
    if baseline not in (None, "vader"):
        raise typer.BadParameter("only 'vader'", param_hint="--baseline")
    try:
        examples = read_labelled(data)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--data") from None
    settings = get_settings()
    scorer: SentimentModel | None = None
    if baseline:
        name = "vader (compound >= 0.05 positive, <= -0.05 negative)"
    elif model and model.endswith(".safetensors") and Path(model).is_file():
        scorer = sentiment.EncoderHeadSentiment(
            settings.encoder_model or None, Path(model), settings.score_batch_size
        )
        name = scorer.name
    else:
        if model:
            settings = settings.model_copy(update={"sentiment_model": model})
        scorer = sentiment.get_sentiment_model(settings)
        name = scorer.name
    result = evaluate_examples(examples, scorer)
    typer.echo(format_report(result, name, str(data)))


@app.command("run")
def run(
    port: int | None = typer.Option(None, help="web port (default: $PORT)"),
    concurrency: int = typer.Option(2, help="I/O worker processes (one scorer runs beside them)"),
) -> None:
    """The main job: migrate, start worker, scorer, beat and web; poll X or replay the sample."""
    from socialcare.cli.runner import run_all

    sys.exit(run_all(port=port, concurrency=concurrency))


@app.command("web")
def web(
    port: int | None = typer.Option(None, help="port to bind (default $PORT)"),
    grace: float = typer.Option(
        25.0, help="seconds requests in flight get to finish after SIGTERM", hidden=True
    ),
) -> None:
    """Serve the web app on $PORT (SIGTERM ends open event streams at once)."""
    from socialcare.web.serve import serve

    serve(port, grace=grace)


def main() -> None:
    """Console entry point: every failure, click's usage errors included, is one clear line."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        get_settings()
    except (SocialcareError, ValueError) as exc:
        typer.echo(error_line(exc), err=True)
        sys.exit(2)
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:  # click's usage errors
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # type: ignore[attr-defined]  # the group's help
        else:
            typer.echo(f"error: {one_line(exc.format_message())}", err=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
