"""The labelled data the trainers read: SemEval-2017 4A and TweetEval (sentiment), and the
complaints data set; the training rows without validation overlap."""

from __future__ import annotations

import csv
import html
import logging
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from socialcare.scoring.base import LABELS
from socialcare.scoring.encoder import preprocess

log = logging.getLogger(__name__)

SEMEVAL_DIR = Path("sentiment/semeval2017-task4a")
TWEETEVAL_DIR = Path("sentiment/tweeteval-val")
EXCLUDED_FILES = ("twitter-2016test-A.txt",)
COMPLAINTS_FILE = Path("complaints/complaints_train.csv")
_RECORD = re.compile(r"^(\d+)\t(positive|negative|neutral)\t(.*)$", re.IGNORECASE | re.DOTALL)
_NON_WORD = re.compile(r"[^a-z0-9]+")


class Example(NamedTuple):
    """One labelled text; label is one of LABELS."""

    text: str
    label: str


def parse_semeval(lines: Sequence[str]) -> tuple[list[Example], int]:
    """Parse `id<TAB>label<TAB>text` lines; returns the examples and the skipped line count."""
    out: list[Example] = []
    skipped = 0
    for raw in lines:
        line = raw.rstrip("\r\n")
        match = _RECORD.match(line)
        if match:
            out.append(Example(match.group(3).strip("\t ").strip(), match.group(2).lower()))
        elif out and out[-1].text.startswith('"') and not out[-1].text.endswith('"'):
            # the rest of a quoted text that spans two lines
            out[-1] = Example(f"{out[-1].text} {line.strip(chr(9) + ' ')}", out[-1].label)
        elif line.strip():
            skipped += 1
    return [e for e in out if e.text], skipped


def read_semeval(path: Path) -> list[Example]:
    """Read a SemEval Task 4A gold file, skipping (and logging) malformed lines."""
    examples, skipped = parse_semeval(path.read_text(encoding="utf-8").splitlines())
    if skipped:
        log.warning("%s: skipped %d malformed lines", path, skipped)
    return examples


def read_tweeteval(folder: Path, split: str = "val") -> list[Example]:
    """Read a TweetEval split: `{split}_text.txt` and `{split}_labels.txt` (0/1/2 per line)."""
    texts = (folder / f"{split}_text.txt").read_text(encoding="utf-8").split("\n")
    labels = (folder / f"{split}_labels.txt").read_text(encoding="utf-8").split()
    if texts and texts[-1] == "":
        texts.pop()
    if len(texts) != len(labels):
        raise ValueError(f"{folder}: {len(texts)} texts but {len(labels)} labels")
    return [Example(t.strip(), LABELS[int(n)]) for t, n in zip(texts, labels, strict=True)]


def read_complaints(path: Path) -> tuple[list[str], list[int]]:
    """Texts and 0/1 labels (1: complaint) of a `id,text,label,domain` CSV file."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("text", "").strip()]
    return [r["text"] for r in rows], [int(r["label"]) for r in rows]


def normalise(text: str) -> str:
    """Text for overlap matching: lowercase, no URLs/mentions/punctuation, single spaces."""
    words = html.unescape(preprocess(text)).lower().split()
    kept = [w for w in words if not w.startswith(("@", "http", "www.")) and w != "rt"]
    return " ".join(_NON_WORD.sub(" ", " ".join(kept)).split())


def semeval_files(data_dir: Path) -> list[Path]:
    """The SemEval 4A files trained on: all but EXCLUDED_FILES (kept for a final test)."""
    semeval = sorted((data_dir / SEMEVAL_DIR).glob("twitter-*-A.txt"))
    return [p for p in semeval if p.name not in EXCLUDED_FILES]


def training_rows(files: list[Path], val: list[Example]) -> tuple[list[Example], dict[str, int]]:
    """All rows of `files`, without validation overlap, duplicates merged by majority label."""
    val_keys = {normalise(e.text) for e in val}
    groups: dict[str, list[Example]] = {}
    stats = Counter[str]()
    for path in files:
        for ex in read_semeval(path):
            stats["rows_read"] += 1
            key = normalise(ex.text)
            if key in val_keys:
                stats["dropped_overlap"] += 1
            else:
                groups.setdefault(key, []).append(ex)
    rows: list[Example] = []
    for group in groups.values():
        top = Counter(e.label for e in group).most_common(2)
        if len(top) > 1 and top[0][1] == top[1][1]:
            stats["dropped_conflicting"] += len(group)
            continue
        stats["merged_duplicates"] += len(group) - 1
        rows.append(Example(group[0].text, top[0][0]))
    return rows, dict(stats)
