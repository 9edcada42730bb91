"""`socialcare teams languages`, `agents languages` and `languages fill|detect`."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from typer.testing import CliRunner

from socialcare.cli import app
from socialcare.db import session_scope
from socialcare.people.models import Agent, Team
from socialcare.posts.models import Post
from tests.factories import make_account, make_post


def run(*args: str, ok: bool = True) -> str:
    result = CliRunner().invoke(app, list(args))
    if ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    else:
        assert result.exit_code != 0, result.output
    return result.output


def test_teams_and_agents_declare_the_languages_they_read(engine, settings) -> None:
    assert "reads: en" in run("teams", "list")
    run("teams", "add", "tehran")
    assert run("teams", "languages", "tehran").strip() == "tehran reads any language"
    assert run("teams", "languages", "tehran", "FA", "en,fa").strip() == "tehran reads fa, en"
    assert "not an ISO 639-1 language code" in run(
        "teams", "languages", "tehran", "farsi", ok=False
    )
    assert "no team 'nowhere'" in run("teams", "languages", "nowhere", "fa", ok=False)
    run("agents", "add", "olga", "--team", "care")
    assert run("agents", "languages", "olga", "ru").strip() == "olga reads ru"
    with session_scope(settings) as s:
        assert s.scalars(select(Team.languages).where(Team.name == "tehran")).one() == ["fa", "en"]
        assert s.scalars(select(Agent.languages).where(Agent.handle == "olga")).one() == ["ru"]
    assert run("teams", "languages", "tehran", "--any").strip() == "tehran reads any language"
    assert "olga reads what their teams read" in run("agents", "languages", "olga", "--clear")


def test_posts_stored_without_a_language_are_filled(engine, settings) -> None:
    assert run("languages", "detect", "Мой интернет не работает").strip() == "ru"
    with session_scope(settings) as s:
        acme = make_account(s, "acme")
        at = datetime(2026, 12, 6, tzinfo=UTC)
        for text in ("سفارشم هنوز نرسیده", "where is my parcel", "ok"):
            make_post(s, acme, text, created_at=at)
        make_post(s, acme, "Sorry, please DM us", created_at=at, is_brand=True)
    assert run("languages", "fill", "--batch", "2").strip() == "3 posts given a language"
    with session_scope(settings) as s:
        got = dict(s.execute(select(Post.text, Post.language)).tuples().all())
    assert got == {
        "سفارشم هنوز نرسیده": "fa",
        "where is my parcel": "en",
        "ok": "und",
        "Sorry, please DM us": None,
    }
