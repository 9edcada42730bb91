"""Every other command the README shows, run in a fresh process on a set-up database (SQLite
and PostgreSQL), checked for its exit code and its effect."""

from __future__ import annotations

import csv
import io
import json
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from sqlalchemy import func, select, update

from socialcare.cases.models import Case, Event, Reply
from socialcare.db import utcnow
from socialcare.people.models import Agent, Team
from socialcare.people.service import token_agent
from socialcare.posts.models import Account, Post
from tests.cli.conftest import HOSTILE_ID
from tests.cli.shell import SOCIALCARE, Shell


def _case_id(out: str) -> int:
    found = re.search(r"case #(\d+)", out)
    assert found, out
    return int(found.group(1))


def test_an_agent_claims_replies_and_closes_cases_as_the_web_does(shell: Shell) -> None:
    shell.run("agents", "add", "ana", "--team", "care", "--team", "billing", "--team", "tech")
    first = _case_id(shell.run("claim-next", "--agent", "ana").out)
    sent = shell.run("reply", str(first), "--agent", "ana", "--text", "Sorry! DM us?", "--inline")
    with shell.db() as s:
        reply = s.scalars(select(Reply).where(Reply.case_id == first)).one()
        assert (reply.state, reply.external_id is not None) == ("sent", True)  # the replay source
        assert s.get(Case, first).first_response_at is not None
    assert sent.out == f"reply #{reply.id}: sent\n"

    with shell.db() as s:  # a send that failed: listed, and sent again by a person
        s.execute(
            update(Reply).where(Reply.id == reply.id).values(state="failed", last_error="503 busy")
        )
        s.commit()
    listed = shell.run("replies").out
    assert re.match(rf"reply #{reply.id}\s+case #{first}\s+failed\s+attempts 1: 503 busy\n", listed)
    assert shell.run("reply-retry", str(reply.id), "--agent", "ana", "--inline").out.endswith(
        "sent\n"
    )
    assert shell.run("replies", "--state", "failed").out == "no replies failed\n"

    second = _case_id(shell.run("claim-next", "--agent", "ana").out)
    third = _case_id(shell.run("claim-next", "--agent", "ana").out)
    assert shell.run("dismiss", str(second), "--agent", "ana", "--reason", "spam").out == (
        f"case #{second} dismissed\n"
    )
    escalated = shell.run(
        "escalate", str(third), "--agent", "ana", "--team", "swat", "--reason", "legal threat"
    )
    assert re.fullmatch(rf"case #{third} escalated to swat as P\d\n", escalated.out)
    with shell.db() as s:
        assert (s.get(Case, second).status, s.get(Case, second).close_reason) == (
            "dismissed",
            "spam",
        )
        moved = s.get(Case, third)
        swat = s.scalar(select(Team.id).where(Team.name == "swat"))
        assert (moved.status, moved.team_id, moved.escalated) == ("queued", swat, True)
        kinds = set(s.scalars(select(Event.kind).where(Event.case_id.in_((second, third)))))
        assert {"claimed", "dismissed", "escalated"} <= kinds

    # A lead takes one case by id (claim), then closes it with the default reason.
    queued = shell.run("queue", "--team", "swat", "--limit", "200").out
    assert f"#{third}" in queued
    assert shell.run("claim", str(third), "--agent", "demo").out == f"claimed case #{third}\n"
    shell.run("resolve", str(third), "--agent", "demo")
    with shell.db() as s:
        assert s.get(Case, third).status == "resolved"


def test_people_and_teams_are_managed_from_the_command_line(shell: Shell) -> None:
    added = shell.run("agents", "add", "Rosa", "--name", "Rosa", "--role", "lead", "--team", "care")
    assert re.fullmatch(r"lead Rosa added\npassword \(shown once\): \S{12,}\n", added.out)
    shell.run("agents", "password", "rosa", "--password-stdin", input="a long new secret\n")
    token = shell.run("agents", "token", "rosa", "--name", "crm sync").out.strip()
    shell.run("teams", "add", "night-shift")
    shell.run("teams", "join", "night-shift", "rosa")
    out = shell.run(
        "teams", "calendar", "night-shift", "--hours", "mon-fri 20:00-23:00", "--tz", "UTC"
    )
    assert out.out.startswith("night-shift: ")
    listed, teams = shell.run_all([("agents", "list"), ("teams", "list")])
    assert re.search(r"rosa\s+lead\s+active\s+(care,night-shift|night-shift,care)", listed.out)
    assert {line.split()[0] for line in teams.out.splitlines()} >= {"care", "night-shift", "swat"}
    with shell.db() as s:
        assert token_agent(session=s, secret=token, now=utcnow()).handle == "rosa"
        s.commit()
    shell.run("teams", "leave", "night-shift", "rosa")
    shell.run("agents", "disable", "rosa")
    with shell.db() as s:
        rosa = s.scalars(select(Agent).where(Agent.handle == "rosa")).one()
        assert not rosa.active and [t.name for t in rosa.teams] == ["care"]
        assert s.get(Team, s.scalar(select(Team.id).where(Team.name == "night-shift"))).calendar
        assert token_agent(session=s, secret=token, now=utcnow()) is None
    shell.run("agents", "enable", "rosa")
    with shell.db() as s:
        assert s.scalar(select(Agent.active).where(Agent.handle == "rosa")) is True


def test_accounts_are_added_polled_and_reported(shell: Shell, tmp_path: Path) -> None:
    feed = tmp_path / "live.csv"
    with feed.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            [
                "tweet_id",
                "author_id",
                "inbound",
                "created_at",
                "text",
                "response_tweet_id",
                "in_response_to_tweet_id",
            ]
        )
        writer.writerow(
            ["880001", "880901", "True", "Tue Oct 31 10:00:00 +0000 2017", "@AcmeCare late", "", ""]
        )
    x, mastodon, bluesky, replay = shell.run_all(
        [
            ("accounts", "add", "x", "@AcmeCare"),
            ("accounts", "add", "mastodon", "AcmeCare"),
            ("accounts", "add", "bluesky", "Acme.BSKY.social"),
            ("accounts", "add", "replay", str(feed), "--speedup", "1000000"),
        ]
    )
    assert re.fullmatch(r"account \d+: x @AcmeCare\n", x.out)
    assert re.fullmatch(r"account \d+: mastodon @AcmeCare\n", mastodon.out)
    assert re.fullmatch(r"account \d+: bluesky @acme\.bsky\.social\n", bluesky.out)
    feed_id = int(re.fullmatch(r"account (\d+): replay replay:live at 1000000.0x\n", replay.out)[1])
    assert shell.run("poll", str(feed_id), "--once").out == "stored 1 new posts\n"
    with shell.db() as s:
        post = s.scalars(select(Post).where(Post.external_id == "880001")).one()
        assert post.case_id is not None  # scored and routed in the same process
        platforms = dict(s.execute(select(Account.handle, Account.platform)).all())
    assert {"AcmeCare", "acme.bsky.social", "replay:live"} <= set(platforms)
    listed, status = shell.run_all(
        [("accounts", "list"), ("sources", "status", "--format", "json")]
    )
    assert re.search(rf"{feed_id}\s+twcs\s+replay:live\s+polled", listed.out)
    rows = {row["id"]: row for row in json.loads(status.out)}
    assert rows[feed_id]["state"] == "ok" and rows[feed_id]["last_poll"]


def test_latency_and_digests_report_what_the_database_holds(shell: Shell) -> None:
    with shell.db() as s:
        cases = s.scalar(select(func.count()).select_from(Case))
        brands = set(s.scalars(select(Account.handle).join(Case, Case.account_id == Account.id)))
    team, priority, platform, topic, hour, as_csv, digest, status = shell.run_all(
        [
            ("latency", "--by", "team"),
            ("latency", "--by", "priority"),
            ("latency", "--by", "platform"),
            ("latency", "--by", "topic"),
            ("latency", "--by", "hour", "--tz", "Europe/London"),
            ("latency", "--by", "brand", "--format", "csv"),
            ("digest", "--period", "week", "--to", "stdout", "--tz", "UTC"),
            ("digest", "status", "--format", "json"),
        ]
    )
    rows = list(csv.DictReader(io.StringIO(as_csv.out)))
    assert {r["group"] for r in rows} == brands
    assert sum(int(r["cases"]) for r in rows) == cases
    for table in (team, priority, platform, topic, hour):
        assert table.out.splitlines()[0].split()[:3] == ["group", "cases", "answered"]
        assert sum(int(line.split()[1]) for line in table.out.splitlines()[2:]) == cases
    assert {line.split()[0] for line in priority.out.splitlines()[2:]} <= {"P1", "P2", "P3", "P4"}
    assert "twcs" in platform.out
    assert digest.out.strip()
    assert json.loads(status.out) == []


def test_the_web_command_serves_the_workspace(sqlite_shell: Shell) -> None:
    shell = sqlite_shell
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    web = subprocess.Popen(
        [SOCIALCARE, "web", "--port", str(port)],
        env=shell.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    shell.ran.append(("web",))
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert web.poll() is None, web.stderr.read() if web.stderr else ""
                assert time.monotonic() < deadline, "the web process did not answer in 60 s"
                time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as r:
            assert r.status == 200 and b"password" in r.read()
    finally:
        web.send_signal(signal.SIGTERM)
        # uvicorn stops gracefully, then ends by the signal it caught, as a default handler would.
        assert web.wait(timeout=30) in (0, -signal.SIGTERM)


def test_models_are_evaluated_and_a_bad_training_target_is_one_clear_error(
    sqlite_shell: Shell, tmp_path: Path
) -> None:
    shell = sqlite_shell
    data = tmp_path / "semeval.txt"
    data.write_text("1\tpositive\tI love this, it is great!\n2\tnegative\tThis is terrible\n")
    report = shell.run("model", "eval", "sentiment", "--data", str(data), "--baseline", "vader")
    assert "model: vader" in report.out and "accuracy" in report.out
    line = shell.fails("model", "train", "poetry", "--out", str(tmp_path / "out"), code=2)
    assert "sentiment, sentiment-head or complaint" in line
    assert not (tmp_path / "out").exists()


def test_post_texts_and_names_reach_the_terminal_inert(shell: Shell) -> None:
    """A post that would clear the screen, retitle the window, ring the bell and reverse the
    text is shown with visible marks, in the queue and the case."""
    with shell.db() as s:
        case = s.get(Case, s.scalar(select(Post.case_id).where(Post.external_id == HOSTILE_ID)))
        assert case is not None and case.status == "queued"
        case_id, team = case.id, s.get(Team, case.team_id)
        team.name = f"{team.name}\x1b]0;x\x07"
        renamed = team.name.split("\x1b")[0] + "[ESC]]0;x[BEL]"
        s.commit()
    queue, shown, teams = shell.run_all(
        [("queue", "--limit", "200"), ("show", str(case_id)), ("teams", "list")]
    )
    for out in (queue.out, shown.out, teams.out):
        assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "[ESC][2J[ESC]]0;owned[BEL] refund me now [RLO]evil" in shown.out
    assert "[ESC][2J[ESC]]0;owned[BEL] refund me now [RLO]evil" in queue.out
    assert renamed in queue.out and renamed in teams.out
