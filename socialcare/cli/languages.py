"""`socialcare languages ...`: the language of a text, and of posts stored before detection."""

from __future__ import annotations

import typer

from socialcare.db import session_scope

languages_app = typer.Typer(help="Languages of posts.", no_args_is_help=True)


@languages_app.command("detect")
def languages_detect(text: str = typer.Argument(..., help="a post's text")) -> None:
    """Print the ISO 639-1 code of the text's language ("und" when it cannot be told)."""
    from socialcare.posts.language import detect_language

    typer.echo(detect_language(text))


@languages_app.command("fill")
def languages_fill(
    batch: int = typer.Option(1000, min=1, max=100_000, help="posts per transaction"),
) -> None:
    """Detect the language of customer posts stored without one, newest first, one batch per
    transaction (safe to stop and run again)."""
    from socialcare.posts.service import fill_languages

    total, below = 0, None
    while True:
        with session_scope() as session:
            done, below = fill_languages(session=session, batch=batch, below=below)
        total += done
        if done < batch:
            break
    typer.echo(f"{total} post{'' if total == 1 else 's'} given a language")
