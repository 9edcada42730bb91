"""`socialcare import twcs`: cases and first-response times checked against the raw CSV."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import datetime

from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from socialcare.cases.models import Case
from socialcare.cli import app
from socialcare.flows.history import HistoryImport
from socialcare.posts.models import Account, Post
from tests.conftest import REPO, SHARED_DATA

HEAD = SHARED_DATA / "twcs" / "twcs_head_1000.csv"


def _csv_rows() -> dict[str, dict[str, str]]:
    with HEAD.open(newline="", encoding="utf-8") as f:
        return {r["tweet_id"]: r for r in csv.DictReader(f)}


def _when(row: dict[str, str]) -> datetime:
    return datetime.strptime(row["created_at"], "%a %b %d %H:%M:%S %z %Y")


def _plain_id(value: str) -> str:
    return value[:-2] if value.endswith(".0") else value


def _import(settings) -> None:  # type: ignore[no-untyped-def]
    HistoryImport([HEAD], settings=settings).run()


def expected_first_responses(session) -> dict[int, float | None]:  # type: ignore[no-untyped-def]
    """Per case: the earliest brand reply to any of its customer posts, minus its first post.

    Computed from the raw CSV rows (a brand reply to X is a brand row whose
    in_response_to_tweet_id is X); only which posts form a case is read from the database.
    """
    rows = _csv_rows()
    replies_to: dict[str, list[datetime]] = {}
    for r in rows.values():
        target = _plain_id(r["in_response_to_tweet_id"])
        if r["inbound"] == "False" and target:
            replies_to.setdefault(target, []).append(_when(r))
    out: dict[int, float | None] = {}
    for case_id in session.execute(select(Case.id)).scalars():
        members = (
            session.execute(
                select(Post.external_id).where(Post.case_id == case_id, Post.is_brand.is_(False))
            )
            .scalars()
            .all()
        )
        opened = min(_when(rows[m]) for m in members)
        times = [t for m in members for t in replies_to.get(m, [])]
        out[case_id] = (min(times) - opened).total_seconds() if times else None
    return out


def test_first_response_times_match_an_independent_computation(engine, settings, model, session):
    _import(settings)
    expected = expected_first_responses(session)
    cases = session.execute(select(Case)).scalars().all()
    assert len(cases) > 200
    rows = _csv_rows()
    for case in cases:
        root = session.get(Post, case.root_post_id)
        assert case.opened_at == _when(rows[root.external_id])
        got = case.first_response_at
        seconds = (got - case.opened_at).total_seconds() if got else None
        assert seconds == expected[case.id], f"case {case.id}"
    assert sum(v is not None for v in expected.values()) > 150


def test_every_customer_tweet_lands_in_exactly_one_case_of_its_author(
    engine, settings, model, session
):
    _import(settings)
    rows = _csv_rows()
    customer = {
        i for i, r in rows.items() if r["inbound"] == "True" and not r["text"].startswith("RT @")
    }
    stored = dict(
        session.execute(
            select(Post.external_id, Post.case_id).where(Post.is_brand.is_(False))
        ).all()
    )
    assert set(stored) == customer
    assert all(case_id is not None for case_id in stored.values())
    for ext, case_id in stored.items():
        case = session.get(Case, case_id)
        assert case is not None and case.customer_external_id == rows[ext]["author_id"]


def test_importing_the_same_file_twice_duplicates_nothing(engine, settings, model, session):
    _import(settings)
    posts = session.execute(select(func.count()).select_from(Post)).scalar_one()
    cases = session.execute(select(func.count()).select_from(Case)).scalar_one()
    session.rollback()  # end the read: on SQLite every transaction holds the write lock
    _import(settings)
    session.expire_all()
    assert session.execute(select(func.count()).select_from(Post)).scalar_one() == posts == 1000
    assert session.execute(select(func.count()).select_from(Case)).scalar_one() == cases


def test_scoring_runs_in_batches_and_every_customer_post_gets_reasons(
    engine, settings, model, session
):
    from socialcare.posts.models import Score

    _import(settings)
    assert max(model.batches) > 1
    assert max(model.batches) <= settings.score_batch_size
    scores = session.execute(select(Score)).scalars().all()
    assert (
        len(scores)
        == session.execute(
            select(func.count()).select_from(Post).where(Post.is_brand.is_(False))
        ).scalar_one()
    )
    for s in scores:
        assert 0.0 <= s.urgency <= 1.0
        assert {r["signal"] for r in s.reasons} >= {"negativity", "topic", "reach"}
        complaint = next(r for r in s.reasons if r["signal"] == "complaint")
        assert complaint["detail"] == f"p(complaint)={complaint['value']:.2f} (test:complaint-cues)"
        total = round(sum(r["value"] * r["weight"] for r in s.reasons[:7]), 4)
        if s.topic in ("praise", "spam"):
            assert s.urgency == min(total, 0.2)
        else:
            assert abs(s.urgency - total) < 1e-3


TWCS_HEADER = (
    b"tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id\n"
)


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_import_reads_a_file_with_a_byte_order_mark_and_names_the_rows_it_changed(
    engine, settings, model, session, tmp_path
):
    path = tmp_path / "export.csv"
    path.write_bytes(
        b"\xef\xbb\xbf"
        + TWCS_HEADER
        + b"11,115712,True,Tue Oct 31 22:10:47 +0000 2017,@sprintcare see x.co/?a=1&copy=2,,\n"
        + b"12,115713,True,Tue Oct 31 22:11:47 +0000 2017,@sprintcare nul \x00 here,,\n"
        + b"13,115714,True,Tue Oct 31 22:12:47 +0000 2017,@sprintcare caf\xe9 &amp;lt;,,\n"
    )
    result = _invoke("import", "twcs", str(path))
    assert result.exit_code == 0, result.output
    assert "stored 3 posts" in result.output
    lines = result.output.splitlines()
    assert lines[-1] == (
        "note: 2 rows had NUL or bytes that are not UTF-8, stored as U+FFFD (tweet ids 12, 13)"
    )
    texts = dict(session.execute(select(Post.external_id, Post.text)).all())
    assert texts == {
        "11": "@sprintcare see x.co/?a=1&copy=2",
        "12": "@sprintcare nul \ufffd here",
        "13": "@sprintcare caf\ufffd &lt;",
    }
    assert session.execute(select(func.count()).select_from(Case)).scalar_one() == 3


def test_import_of_a_clean_file_says_nothing_about_replaced_bytes(
    engine, settings, model, tmp_path
):
    path = tmp_path / "clean.csv"
    path.write_bytes(
        TWCS_HEADER
        + "21,115712,True,Tue Oct 31 22:10:47 +0000 2017,@sprintcare \ufffd,,\n".encode()
    )
    result = _invoke("import", "twcs", str(path))
    assert result.exit_code == 0, result.output
    assert "stored 1 posts" in result.output and "U+FFFD" not in result.output


BAD_FILES = {
    "binary": bytes(range(256)) * 4,
    "utf16": "tweet_id,author_id\n1,2\n".encode("utf-16"),
    "oversized-field": TWCS_HEADER
    + b'1,115712,True,Tue Oct 31 22:10:47 +0000 2017,"'
    + b"z" * 200_000
    + b'",,\n',
    "bad-row": TWCS_HEADER + b"1,115712,maybe,Tue Oct 31 22:10:47 +0000 2017,hi,,\n",
}


def test_a_file_that_is_not_twcs_csv_is_one_error_line_and_stores_nothing(
    engine, settings, session, tmp_path
):
    """As a user runs it: a fresh process, its exit code, its output, the database after."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    good = tmp_path / "good.csv"
    good.write_bytes(TWCS_HEADER + b"5,115712,True,Tue Oct 31 22:10:47 +0000 2017,@acme hi,,\n")
    for name, body in BAD_FILES.items():
        path = tmp_path / f"{name}.csv"
        path.write_bytes(body)
        done = subprocess.run(
            [sys.executable, "-m", "socialcare", "import", "twcs", str(good), str(path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode != 0, (name, done.stdout, done.stderr)
        assert done.stdout == "", name
        (line,) = done.stderr.splitlines()
        assert line.startswith(f"error: {path}"), (name, line)
        assert len(line) < 300, (name, line)
    for table in (Account, Post):
        assert session.execute(select(func.count()).select_from(table)).scalar_one() == 0
