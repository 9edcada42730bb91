"""The language commands in a fresh process on a set-up database (SQLite and PostgreSQL): teams
and agents declare what they read, and posts stored before detection get their language."""

from __future__ import annotations

from sqlalchemy import func, select, update

from socialcare.people.models import Agent, Team
from socialcare.posts.models import Post
from tests.cli.shell import Shell


def test_teams_and_agents_read_languages_and_older_posts_get_theirs(shell: Shell) -> None:
    shell.run("teams", "add", "tehran")
    assert (
        shell.run("teams", "languages", "tehran", "fa", "EN").out.strip() == "tehran reads fa, en"
    )
    assert "not an ISO 639-1" in shell.fails("teams", "languages", "tehran", "farsi", code=2)
    shell.run("agents", "add", "olga", "--team", "care")
    assert shell.run("agents", "languages", "olga", "ru").out.strip() == "olga reads ru"
    assert shell.run("languages", "detect", "Мой интернет не работает").out.strip() == "ru"
    with shell.db() as s:
        assert s.scalar(select(Team.languages).where(Team.name == "tehran")) == ["fa", "en"]
        assert s.scalar(select(Agent.languages).where(Agent.handle == "olga")) == ["ru"]
        customer = Post.is_brand.is_(False)
        detected = dict(s.execute(select(Post.id, Post.language).where(customer)).tuples().all())
        assert detected and None not in detected.values()  # the import detected them
        s.execute(update(Post).values(language=None))  # as stored before migration 0011
        s.commit()
    filled = shell.run("languages", "fill", "--batch", "7").out.strip()
    assert filled == f"{len(detected)} posts given a language"
    with shell.db() as s:
        again = dict(s.execute(select(Post.id, Post.language).where(customer)).tuples().all())
        assert again == detected
        assert s.scalar(select(func.count()).where(Post.is_brand, Post.language.is_not(None))) == 0
