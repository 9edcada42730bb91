"""A replay mixing languages, in Chromium: the bundled English TWCS rows with real Persian
(SnappFood comments) and Russian (SentiRuEval-2015 telecom tweets) customer posts, imported
through the same path as any history (stored, language detected, scored by the real models,
routed). Each post reaches a team that reads its language; a Persian reader's queue and "next
case" give Persian cases, the Russian team sees Russian ones, English goes to the English teams;
an agent whose teams hold only cases in other languages is told so and claims nothing. On SQLite
and PostgreSQL."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import create_engine, select, text

from socialcare.cases.models import Case, Event
from socialcare.config import BUNDLED_TWCS
from socialcare.flows.history import HistoryImport
from socialcare.people.models import Agent, Team
from socialcare.posts.models import Post
from socialcare.routing.service import ensure_default_teams, reads
from tests.conftest import PG_ADMIN_URL, SHARED_DATA
from tests.web.browser_pages import Watch, log_in
from tests.web.browser_support import Site, people, standin, start_site

pytestmark = pytest.mark.slow
MULTILINGUAL = SHARED_DATA / "multilingual"
ENGLISH_ROWS = 300  # the bundled sample's first rows: a few hundred English posts and replies
PER_LANGUAGE = 8
ENGLISH_TEAMS = {"billing", "care", "swat", "tech"}
BRAND = "sprintcare"  # a brand of the bundled sample; the added posts mention it


def _complaints(path: Path, n: int) -> list[str]:
    """The first n negative texts of a shared file (id, label, text) that read as a customer's
    post: 40 to 200 characters, no link, mention or retweet."""
    found = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            _, label, body = line.rstrip("\n").split("\t", 2)
            if label != "negative" or not 40 <= len(body) <= 200:
                continue
            if "http" in body or "@" in body or body.startswith("RT"):
                continue
            found.append(body)
            if len(found) == n:
                break
    return found


def mixed_replay(folder: Path) -> Path:
    """A TWCS file: the bundled sample's first rows, and Persian and Russian customer posts to
    one of its brands, interleaved in time."""
    with BUNDLED_TWCS.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        rows = [row for _, row in zip(range(ENGLISH_ROWS), reader, strict=False)]
    added = [
        *(("fa", t) for t in _complaints(MULTILINGUAL / "snappfood_dev.tsv", PER_LANGUAGE)),
        *(
            ("ru", t)
            for t in _complaints(MULTILINGUAL / "sentiruEval2015_telecom_train.tsv", PER_LANGUAGE)
        ),
    ]
    assert len(added) == 2 * PER_LANGUAGE, "the shared data has the texts"
    for k, (_, body) in enumerate(added):
        rows.append(
            {
                "tweet_id": str(9_000_000 + k),
                "author_id": str(800_000 + k),
                "inbound": "True",
                "created_at": f"Tue Oct 31 22:{12 + k:02d}:30 +0000 2017",
                "text": f"@{BRAND} {body}",
                "response_tweet_id": "",
                "in_response_to_tweet_id": "",
            }
        )
    path = folder / "mixed_replay.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _fresh_postgres() -> tuple[str, Any]:
    name = f"sc_lang_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", (admin, name)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def mixed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp(f"languages-{request.param}")
    dropper = None
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'web.db'}"
    else:
        url, dropper = _fresh_postgres()
    api = standin()
    site = start_site(url, folder / "var", api)
    with site.session() as s:
        ensure_default_teams(session=s)
        for name, code in (("tehran", "fa"), ("moscow", "ru")):
            s.add(Team(name=name, skills=[], sla_seconds={}, calendar={}, languages=[code]))
        s.commit()
    HistoryImport([mixed_replay(folder)], settings=site.settings).run()
    yield site
    site.stop()
    api.stop()
    if dropper is not None:
        from socialcare import db

        db._engine_for.cache_clear()
        admin, name = dropper
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _open_cases(site: Site) -> list[tuple[int, str | None, str, str]]:
    """(case id, its first post's language, its team, its status) of every open case."""
    with site.session() as s:
        rows = s.execute(
            select(Case.id, Post.language, Team.name, Case.status)
            .join(Post, Post.id == Case.root_post_id)
            .join(Team, Team.id == Case.team_id)
            .where(Case.status.in_(("queued", "claimed", "responded")))
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def _agent(site: Site, handle: str, languages: list[str], teams: list[str]) -> None:
    people(site, handle)
    with site.session() as s:
        agent = s.scalars(select(Agent).where(Agent.handle == handle)).one()
        agent.languages = languages
        agent.teams = list(s.scalars(select(Team).where(Team.name.in_(teams))))
        s.commit()


def _rows(page: Page) -> list[tuple[str, str]]:
    """(language badge, team) of each queue row shown."""
    return page.evaluate(
        """() => [...document.querySelectorAll("table.queue tbody tr[data-case]")].map(tr => [
            (tr.querySelector("code.lang") || {}).textContent || "",
            tr.querySelectorAll("td")[5].textContent.trim()])"""
    )


def _language_of(site: Site, case_id: int) -> str | None:
    with site.session() as s:
        case = s.get_one(Case, case_id)
        return s.get_one(Post, case.root_post_id).language


def _next_case(page: Page) -> int:
    page.click("#next-case")
    page.wait_for_url("**/cases/*")
    return int(page.url.rsplit("/", 1)[1])


def test_each_replayed_post_reaches_a_team_that_reads_its_language(
    mixed: Site, browser: Browser
) -> None:
    cases = _open_cases(mixed)
    with mixed.session() as s:
        teams = {t.name: t for t in s.scalars(select(Team))}
        opened = {
            e.case_id: e.data.get("rule")
            for e in s.scalars(select(Event).where(Event.kind == "case_opened"))
        }
        for case_id, code, team, _ in cases:
            assert code is not None, case_id
            if code == "und" or reads(teams[team], code):
                continue
            # A language no team reads (a French post among the English ones) goes to the
            # fallback team, and the case says why.
            assert not any(reads(t, code) for t in teams.values()), (case_id, code, team)
            assert team == "care"
            assert opened[case_id] == f"language {code}: no team reads it, sent to care"
    by_language: dict[str, set[str]] = {}
    for _, code, team, _ in cases:
        by_language.setdefault(str(code), set()).add(team)
    counts = {code: sum(1 for c in cases if c[1] == code) for code in ("fa", "ru", "en")}
    # The detector may call a short post "und", never another language: nearly all are found.
    assert counts["fa"] >= PER_LANGUAGE - 1 and counts["ru"] >= PER_LANGUAGE - 1, counts
    assert counts["en"] >= 30, counts
    assert by_language["fa"] == {"tehran"}
    assert by_language["ru"] == {"moscow"}
    assert by_language["en"] <= ENGLISH_TEAMS

    people(mixed, "lena", role="lead")
    watch = Watch()
    page = log_in(browser, mixed, watch, "lena")
    try:
        for code, expected_teams in (("fa", {"tehran"}), ("ru", {"moscow"}), ("en", ENGLISH_TEAMS)):
            page.goto(f"/?language={code}")
            shown = _rows(page)
            assert shown, code
            assert {badge for badge, _ in shown} == {code}
            assert {team for _, team in shown} <= expected_teams
            if code != "en":  # one page holds them all
                assert len(shown) == counts[code]
        watch.assert_clean()
    finally:
        page.context.close()


def test_next_case_gives_each_reader_cases_in_their_language(mixed: Site, browser: Browser) -> None:
    _agent(mixed, "parisa", ["fa"], ["tehran"])
    _agent(mixed, "farid", ["fa"], ["moscow"])
    _agent(mixed, "olga", ["ru"], ["moscow"])
    _agent(mixed, "ed", ["en"], ["care", "billing", "tech", "swat", "tehran"])
    watch = Watch()
    pages = {h: log_in(browser, mixed, watch, h) for h in ("parisa", "farid", "olga", "ed")}
    try:
        # Farid reads Persian, but his team holds only Russian cases: he is told, not given one.
        farid = pages["farid"]
        farid.click("#next-case")
        alert = farid.locator("#queue-error")
        alert.wait_for(state="visible")
        waiting_ru = sum(1 for _, code, _, status in _open_cases(mixed) if code == "ru")
        assert alert.inner_text() == (
            f"no case in a language you read (fa) is waiting; {waiting_ru} cases wait in other "
            f"languages ({waiting_ru} in ru): a lead may claim them by id, or add the language "
            "to yours"
        )
        assert farid.url.endswith("/")
        with mixed.session() as s:
            farid_id = s.scalars(select(Agent.id).where(Agent.handle == "farid")).one()
            assert s.scalar(select(Case.id).where(Case.claimed_by == farid_id)) is None

        # The Russian team's queue is Russian; Olga's next case is one of them.
        olga = pages["olga"]
        olga.goto("/?team=moscow")
        assert {badge for badge, _ in _rows(olga)} == {"ru"}
        assert _language_of(mixed, _next_case(olga)) == "ru"

        # Parisa takes every Persian case of her team, one "next case" at a time.
        parisa = pages["parisa"]
        persian = sorted(c for c, code, team, st in _open_cases(mixed) if team == "tehran")
        taken = []
        for _ in persian:
            parisa.goto("/?language=fa")
            assert {badge for badge, _ in _rows(parisa)} == {"fa"}
            taken.append(_next_case(parisa))
            assert _language_of(mixed, taken[-1]) == "fa"
        assert sorted(taken) == persian

        # Ed reads English, in every team but the Russian one: Persian cases are no longer
        # waiting, and his next case is English (or of unknown language), never Persian.
        ed = pages["ed"]
        assert _language_of(mixed, _next_case(ed)) in ("en", "und")
        watch.assert_clean()
    finally:
        for page in pages.values():
            page.context.close()
