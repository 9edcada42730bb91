"""Fine-tuning the sentiment model on a tiny SemEval-shaped folder, on the real encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from socialcare.scoring.sentiment import EncoderHeadSentiment
from socialcare.training.data import EXCLUDED_FILES, SEMEVAL_DIR, TWEETEVAL_DIR, read_semeval
from socialcare.training.evaluate import evaluate_examples
from socialcare.training.finetune import FinetuneParams, train_finetuned

NUMBER = {"negative": 0, "neutral": 1, "positive": 2}
WORDS = {
    "negative": ["awful delay again", "worst support ever", "broken and useless", "so angry now"],
    "neutral": ["the store opens at nine", "flight leaves tuesday", "new menu out", "see page"],
    "positive": ["love this team", "thank you so much", "great fix, brilliant", "happy today"],
}
# Texts only in the excluded test file: a trainer that read it would count them as rows.
TEST_ONLY = [("never train on this awful one", "negative"), ("kept apart, lovely", "positive")]


def _data(root: Path) -> Path:
    semeval = root / SEMEVAL_DIR
    semeval.mkdir(parents=True)
    rows = [(f"{text} {n}", label) for label, texts in WORDS.items() for text in texts
            for n in range(3)]  # fmt: skip
    lines = [f"{i}\t{lb}\t{t}\n" for i, (t, lb) in enumerate(rows)]
    (semeval / "twitter-2013train-A.txt").write_text("".join(lines[::2]))
    (semeval / "twitter-2016dev-A.txt").write_text("".join(lines[1::2]))
    (semeval / EXCLUDED_FILES[0]).write_text(
        "".join(f"{900 + i}\t{lb}\t{t}\n" for i, (t, lb) in enumerate(TEST_ONLY))
    )
    val = root / TWEETEVAL_DIR
    val.mkdir(parents=True)
    val_rows = [(WORDS[lb][0] + " 0", lb) for lb in NUMBER] + [("a plain new line", "neutral")]
    (val / "val_text.txt").write_text("".join(f"{t}\n" for t, _ in val_rows))
    (val / "val_labels.txt").write_text("".join(f"{NUMBER[lb]}\n" for _, lb in val_rows))
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    root = _data(tmp_path_factory.mktemp("data"))
    out = tmp_path_factory.mktemp("out")
    params = FinetuneParams(layers=6, epochs=1, batch_size=8)
    meta = train_finetuned(
        data_dir=root,
        out_dir=out,
        candidates={"tiny": params},
        cache_dir=tmp_path_factory.mktemp("cache"),
        progress=False,
    )
    return root, out / "sentiment_finetuned.safetensors", meta


def test_all_six_layers_are_written_and_the_shared_encoder_takes_them(
    trained: tuple[Path, Path, dict],
) -> None:
    _, path, meta = trained
    state = load_file(str(path))
    assert {k.split(".")[1] for k in state if k.startswith("layers.")} == set("012345")
    assert all(v.dtype == torch.float16 for v in state.values())
    assert meta["finetuned_layers"] == 6 and meta["encoder"]["frozen_layers"] == 0
    assert json.loads(path.with_suffix(".json").read_text()) == meta
    model = EncoderHeadSentiment(head_file=path)
    assert model.n_top == 6 and len(model.top) == 6
    probs = model.predict(["worst support ever, so angry", "thank you, love this team"])
    assert all(sum(p.values()) == pytest.approx(1.0) for p in probs)


def test_the_test_file_is_never_read_for_training(trained: tuple[Path, Path, dict]) -> None:
    _, _, meta = trained
    training = meta["training"]
    # 36 distinct rows in the two training files, 3 dropped as validation overlap
    assert training["rows_read"] == 36 and training["dropped_overlap"] == 3
    assert training["n_train_rows"] + training["n_holdout_rows"] == 33
    assert EXCLUDED_FILES[0] not in meta["provenance"]["train_files"]
    assert meta["provenance"]["excluded_files"] == list(EXCLUDED_FILES)


def test_val_and_test_figures_in_fp32_and_int8_are_the_written_models(
    trained: tuple[Path, Path, dict],
) -> None:
    root, path, meta = trained
    figures = meta["metrics"]["fp32_int8"]
    test_rows = read_semeval(root / SEMEVAL_DIR / EXCLUDED_FILES[0])
    for quantize, label in (("none", "fp32"), ("int8", "int8")):
        model = EncoderHeadSentiment(head_file=path, quantize=quantize)
        again = evaluate_examples(test_rows, model)
        assert figures["semeval2016_test"][label]["confusion"] == again["confusion"]
        assert figures["semeval2016_test"][label]["n"] == len(TEST_ONLY)
        assert figures["tweeteval_val"][label]["n"] == 4


def test_a_layer_count_outside_the_encoder_is_refused(tmp_path: Path) -> None:
    root = _data(tmp_path / "data")
    with pytest.raises(ValueError, match=r"layers: 1\.\.6 for this encoder, not 7"):
        train_finetuned(data_dir=root, out_dir=tmp_path / "out", layers=7, progress=False,
                        cache_dir=tmp_path / "cache")  # fmt: skip
    assert not (tmp_path / "out").exists()
