"""`socialcare model eval sentiment`: readers, figures and the printed confusion matrix."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from socialcare.cli import app
from socialcare.scoring import sentiment
from tests.fakes import CueWordSentiment

# (text, true label); the cue-word model predicts negative, negative, positive | neutral,
# positive | positive, neutral.
ROWS = [
    ("worst day at the airport", "negative"),
    ("I hate this queue", "negative"),
    ("thank you I guess", "negative"),
    ("ok then", "neutral"),
    ("love it or leave it", "neutral"),
    ("great stuff", "positive"),
    ("it is a table", "positive"),
]
# rows true, columns predicted, in negative, neutral, positive order
CONFUSION = [[2, 0, 1], [0, 1, 1], [0, 1, 1]]
MACRO_RECALL = (2 / 3 + 1 / 2 + 1 / 2) / 3
ACCURACY = 4 / 7
NUMBER = {"negative": 0, "neutral": 1, "positive": 2}


@pytest.fixture(autouse=True)
def fake_model(monkeypatch: pytest.MonkeyPatch) -> CueWordSentiment:
    fake = CueWordSentiment()
    monkeypatch.setattr(sentiment, "get_sentiment_model", lambda settings: fake)
    return fake


def _tweeteval(folder: Path, split: str = "val", rows: list[tuple[str, str]] = ROWS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{split}_text.txt").write_text("".join(f"{t}\n" for t, _ in rows))
    (folder / f"{split}_labels.txt").write_text("".join(f"{NUMBER[lb]}\n" for _, lb in rows))
    return folder


def _semeval(path: Path, rows: list[tuple[str, str]] = ROWS) -> Path:
    path.write_text("".join(f"{i}\t{lb}\t{t}\n" for i, (t, lb) in enumerate(rows, start=100)))
    return path


def _figures(output: str) -> tuple[float, float, list[list[int]]]:
    lines = output.splitlines()
    value = {ln.split(":")[0]: ln.split(":", 1)[1].strip() for ln in lines if ":" in ln}
    start = next(i for i, ln in enumerate(lines) if ln.startswith("confusion")) + 2
    matrix = [[int(n) for n in ln.split()[1:]] for ln in lines[start : start + 3]]
    assert [ln.split()[0] for ln in lines[start : start + 3]] == list(NUMBER)
    return float(value["macro recall"]), float(value["accuracy"]), matrix


def _run(*args: str) -> str:
    result = CliRunner().invoke(app, ["model", "eval", "sentiment", *args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("form", ["folder", "text-file", "semeval"])
def test_figures_equal_hand_computed(tmp_path: Path, form: str) -> None:
    if form == "folder":
        data = _tweeteval(tmp_path / "tweeteval")
    elif form == "text-file":
        data = _tweeteval(tmp_path / "tweeteval", "test") / "test_text.txt"
    else:
        data = _semeval(tmp_path / "twitter-test-A.txt")
    output = _run("--data", str(data))
    macro, accuracy, matrix = _figures(output)
    assert macro == pytest.approx(MACRO_RECALL, abs=1e-4)
    assert accuracy == pytest.approx(ACCURACY, abs=1e-4)
    assert matrix == CONFUSION
    assert "model: test:cue-words" in output
    assert "recall: negative 0.6667  neutral 0.5000  positive 0.5000" in output
    assert f"({len(ROWS)} examples)" in output


def test_vader_baseline(tmp_path: Path) -> None:
    rows = [
        ("I love this, it is great!", "positive"),
        ("This is terrible and I hate it", "negative"),
        ("The meeting is at 3pm in room 4", "neutral"),
        ("The meeting is at 4pm in room 3", "positive"),
    ]
    output = _run("--data", str(_semeval(tmp_path / "s.txt", rows)), "--baseline", "vader")
    macro, accuracy, matrix = _figures(output)
    assert matrix == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert macro == pytest.approx((1 + 1 + 0.5) / 3, abs=1e-4)
    assert accuracy == pytest.approx(3 / 4)
    assert "model: vader" in output


def test_unreadable_data_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for data in (tmp_path / "empty", _semeval(tmp_path / "none.txt", [])):
        result = CliRunner().invoke(app, ["model", "eval", "sentiment", "--data", str(data)])
        assert result.exit_code == 2
    result = CliRunner().invoke(
        app, ["model", "eval", "sentiment", "--data", str(tmp_path), "--baseline", "x"]
    )
    assert result.exit_code == 2


def test_a_head_file_on_the_real_encoder(tmp_path: Path) -> None:
    """--model takes a built-in head file: here the head on the frozen encoder."""
    head = Path(sentiment.__file__).parent / "models" / "sentiment_head.safetensors"
    rows = [("this is the worst service ever, I hate you", "negative")] * 2 + [
        ("thank you so much, the support team was amazing!", "positive")
    ]
    output = _run("--data", str(_semeval(tmp_path / "s.txt", rows)), "--model", str(head))
    macro, accuracy, matrix = _figures(output)
    assert matrix == [[2, 0, 0], [0, 0, 0], [0, 0, 1]]
    assert (macro, accuracy) == (1.0, 1.0)
    assert "model: builtin:minilm-l6-head@" in output
