"""The complaint head over either branch of the trunk, on the real encoder and shipped models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from socialcare.scoring.complaint import COMPLAINT_FILE
from socialcare.scoring.encoder import get_encoder
from socialcare.scoring.sentiment import FINETUNED_FILE, EncoderHeadSentiment
from socialcare.training.complaint import branch_layers, embed_trunk, train_complaint
from socialcare.training.data import COMPLAINTS_FILE

TEXTS = [
    "@acme third time my order is late and still no refund, fix this!",
    "@acme happy friday everyone, enjoying the new album",
    "ok",
    "@acme the app crashes every time I open it. useless. " * 6,
]
COMPLAINTS = [
    "my parcel is late again and nobody answers",
    "charged twice and still no refund, awful",
    "the app keeps crashing, this is broken",
    "third delayed flight this month, terrible service",
    "wifi down all day and support hung up on me",
    "my order arrived damaged and you ignore my emails",
]
OTHERS = [
    "thanks for the quick help today",
    "what time does the shop open on sunday",
    "loving the new playlist feature",
    "great chat with your team, sorted",
    "is the summer sale starting soon",
    "congrats on the new store opening",
]


def test_the_finetuned_branch_shares_the_frozen_layers_and_differs_above() -> None:
    enc = get_encoder()
    sentiment = EncoderHeadSentiment(head_file=FINETUNED_FILE)
    tuned = branch_layers(enc, sentiment, TEXTS, batch_size=2)
    base = enc.encode(TEXTS, 2, layers=range(enc.n_layers + 1))
    assert tuned.shape == base.shape == (len(TEXTS), enc.dim * (enc.n_layers + 1))
    shared = (enc.n_layers - sentiment.n_top + 1) * enc.dim  # the embeddings and frozen layers
    assert torch.allclose(tuned[:, :shared], base[:, :shared], atol=1e-5)
    assert not torch.allclose(tuned[:, shared:], base[:, shared:], atol=1e-3)
    norms = tuned.reshape(len(TEXTS), enc.n_layers + 1, enc.dim).norm(dim=-1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)


def test_both_branches_side_by_side_and_an_unknown_trunk(tmp_path: Path) -> None:
    enc = get_encoder()
    both = embed_trunk(enc, TEXTS, "both", FINETUNED_FILE, tmp_path, 4, False)
    assert both.shape == (len(TEXTS), enc.dim * (2 * enc.n_layers + 1))
    again = embed_trunk(enc, TEXTS, "finetuned", FINETUNED_FILE, tmp_path, 4, False)
    assert torch.equal(both[:, (enc.n_layers + 1) * enc.dim :], again[:, enc.dim :])
    with pytest.raises(ValueError, match="trunk: one of base, finetuned, both"):
        embed_trunk(enc, TEXTS, "tuned", FINETUNED_FILE, tmp_path, 4, False)


def test_a_head_over_the_finetuned_trunk_records_its_trunk(tmp_path: Path) -> None:
    csv = tmp_path / COMPLAINTS_FILE
    csv.parent.mkdir(parents=True)
    rows = [(t, 1) for t in COMPLAINTS] + [(t, 0) for t in OTHERS]
    csv.write_text("id,text,label,domain\n" + "".join(f'{i},"{t}",{y},x\n'
                   for i, (t, y) in enumerate(rows)))  # fmt: skip
    meta = train_complaint(
        data_dir=tmp_path,
        out_dir=tmp_path / "out",
        folds=3,
        variants=("logistic-all-layers+lexical",),
        cache_dir=tmp_path / "cache",
        progress=False,
        trunk="finetuned",
    )
    assert meta["head"]["trunk"] == "finetuned" and meta["head"]["layers"] == list(range(7))
    assert meta["provenance"]["trunk_model"] == {
        FINETUNED_FILE.name: json.loads(FINETUNED_FILE.with_suffix(".json").read_text())[
            "provenance"
        ]["sha256"]
    }
    assert meta["metrics"]["cv"]["folds"] == 3 and 0.0 <= meta["metrics"]["cv"]["f1"] <= 1.0
    written = tmp_path / "out" / COMPLAINT_FILE.name
    assert json.loads(written.with_suffix(".json").read_text()) == meta
