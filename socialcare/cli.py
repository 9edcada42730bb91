"""The `socialcare` command line: database, main job, imports, polling, latency, models."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import typer

from socialcare.cli_cases import register as register_case_commands
from socialcare.cli_digest import digest_app
from socialcare.cli_sources import add_account, poll_command, sources_app
from socialcare.config import get_settings
from socialcare.errors import SocialcareError

app = typer.Typer(
    help="Social media customer care workers.", no_args_is_help=True, pretty_exceptions_enable=False
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


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the latest schema and create the default teams (idempotent)."""
    from socialcare.db import session_scope
    from socialcare.migrate import upgrade
    from socialcare.routing.service import ensure_default_teams

    upgrade(get_settings())
    with session_scope() as session:
        ensure_default_teams(session=session)
    typer.echo("database is at the latest schema")


@import_app.command("twcs")
def import_twcs(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, readable=True),
) -> None:
    """Load TWCS CSV files: posts, scores, cases and first responses, as seen at their times."""
    from socialcare.flows import InlineRunner, import_files
    from socialcare.sources import twcs

    # Every file is read whole before anything is stored: a file that is not TWCS CSV ends the
    # command with one error line and leaves the database as it was.
    replaced = twcs.load(files).replaced
    runner = InlineRunner()
    totals = import_files([str(f) for f in files], enqueue=runner)
    typer.echo(
        f"stored {totals['new']} posts ({totals['duplicates']} already stored, "
        f"{totals['ignored']} not work); scoring and routing..."
    )
    steps = runner.drain()
    typer.echo(f"done: {steps} batches scored and routed")
    if replaced:
        shown = ", ".join(replaced[:5]) + (", ..." if len(replaced) > 5 else "")
        typer.echo(
            f"note: {len(replaced)} rows had NUL or bytes that are not UTF-8, stored as U+FFFD "
            f"(tweet ids {shown})"
        )


@accounts_app.command("add-x")
def accounts_add_x(handle: str) -> None:
    """Monitor an X account's mentions (the same as `accounts add x HANDLE`)."""
    add_account("x", handle)


@accounts_app.command("add-mastodon")
def accounts_add_mastodon(handle: str) -> None:
    """Monitor a Mastodon account (the same as `accounts add mastodon HANDLE`; needs
    MASTODON_API_BASE_URL and MASTODON_ACCESS_TOKEN, the account's own token)."""
    add_account("mastodon", handle)


@accounts_app.command("add-bluesky")
def accounts_add_bluesky(handle: str) -> None:
    """Monitor a Bluesky account (the same as `accounts add bluesky HANDLE`; needs
    BLUESKY_HANDLE and BLUESKY_APP_PASSWORD)."""
    add_account("bluesky", handle)


@accounts_app.command("add-replay")
def accounts_add_replay(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False),
    speedup: float = typer.Option(60.0, min=0.001, help="virtual seconds per wall second"),
) -> None:
    """Stream TWCS files as live mentions at a speed-up."""
    from socialcare.db import session_scope
    from socialcare.setup import ensure_replay_feed

    with session_scope() as session:
        account = ensure_replay_feed(session=session, files=files, speedup=speedup)
        typer.echo(f"account {account.id}: {account.handle} at {speedup}x")


@accounts_app.command("list")
def accounts_list() -> None:
    """Accounts with their poll state."""
    from sqlalchemy import select

    from socialcare.db import session_scope
    from socialcare.posts.models import Account

    with session_scope() as session:
        for a in session.execute(select(Account).order_by(Account.id)).scalars():
            state = "failing" if a.failing else ("polled" if a.config.get("polled") else "brand")
            typer.echo(f"{a.id:>4} {a.platform:<6} {a.handle:<40} {state:<8} {a.last_error or ''}")


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
    by: str = typer.Option("brand", help="brand, team, priority, platform, topic or hour"),
    fmt: str = typer.Option("table", "--format", help="table or csv"),
    tz: str = typer.Option("UTC", "--tz", help="time zone of --by hour (IANA name)"),
) -> None:
    """First-response latency per group: cases, answered, p50/p90 seconds, SLA attainment."""
    from socialcare.db import session_scope
    from socialcare.metrics.latency import format_csv, format_table, latency_by

    if fmt not in ("table", "csv"):
        raise typer.BadParameter("table or csv", param_hint="--format")
    with session_scope() as session:
        try:
            rows = latency_by(session, by=by, tz=tz)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    typer.echo(format_csv(rows) if fmt == "csv" else format_table(rows), nl=fmt != "csv")


@model_app.command("train")
def model_train(
    what: str = typer.Argument("sentiment", help="sentiment, sentiment-head or complaint"),
    data: Path = typer.Option(Path("../shared/data"), help="folder with sentiment/, complaints/"),
    out: Path = typer.Option(Path(__file__).parent / "scoring" / "models", help="output folder"),
    seed: int = typer.Option(13),
) -> None:
    """Train a built-in model and write it with its metrics and provenance (a .json beside it).

    sentiment: the top encoder layers fine-tuned with a head on SemEval-2017 4A, evaluated on
    TweetEval validation; sentiment-head: a head on the frozen encoder (the same data);
    complaint: the complaint head, chosen and reported by 10-fold cross-validation.
    """
    logging.getLogger("socialcare").setLevel(logging.INFO)
    if what == "sentiment":
        from socialcare.scoring.train_finetune import train_finetuned

        metrics = train_finetuned(data_dir=data, out_dir=out, seed=seed)
    elif what == "sentiment-head":
        from socialcare.scoring.train import train_sentiment

        metrics = train_sentiment(data_dir=data, out_dir=out, seed=seed)
    elif what == "complaint":
        from socialcare.scoring.train_complaint import train_complaint

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
    from socialcare.scoring.evaluate import evaluate_examples, format_report, read_labelled

    if what != "sentiment":
        raise typer.BadParameter("only 'sentiment' can be evaluated", param_hint="WHAT")
    if baseline not in (None, "vader"):
        raise typer.BadParameter("only 'vader'", param_hint="--baseline")
    try:
        examples = read_labelled(data)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--data") from None
    settings = get_settings()
    scorer: sentiment.SentimentModel | None = None
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
    concurrency: int = typer.Option(2, help="worker processes"),
) -> None:
    """The main job: migrate, start worker, beat and web, and poll X or replay the sample."""
    from socialcare.runner import run_all

    sys.exit(run_all(port=port, concurrency=concurrency))


@app.command("web")
def web(port: int | None = typer.Option(None)) -> None:
    """Serve the web app on $PORT."""
    import uvicorn

    from socialcare.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_format == "json")
    uvicorn.run(
        "socialcare.web.app:create_app",
        factory=True,
        log_config=None,
        host="0.0.0.0",
        port=port or settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=25,
    )


def main() -> None:
    """Console entry point: errors socialcare raises on purpose print one clear line."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        get_settings()
        app()
    except SocialcareError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
