"""The complaint model: p(complaint) from the shared encoder's layers and a few word cues."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file
from torch import nn

from socialcare.errors import ModelError
from socialcare.scoring.encoder import (
    BASE,
    BRANCHES,
    FINETUNED,
    batches,
    get_encoder,
    preprocess,
    sha256_files,
)
from socialcare.scoring.sentiment import (
    MODELS_DIR,
    EncoderHeadSentiment,
    SentimentHead,
    builtin_sentiment,
)
from socialcare.scoring.topics import complaint_signal

if TYPE_CHECKING:
    from socialcare.config import Settings

COMPLAINT_FILE = MODELS_DIR / "complaint_head.safetensors"
# Word cues appended to the embedding when a model was trained with them, in this order.
LEXICAL_FEATURES = ("complaint_markers", "question_mark", "exclamation_mark")


def lexical_features(texts: Sequence[str]) -> torch.Tensor:
    """(n x 3): complaint markers (topics.complaint_signal), has '?', has '!'."""
    rows = [[complaint_signal(t), float("?" in t), float("!" in t)] for t in texts]
    return torch.tensor(rows, dtype=torch.float32).reshape(len(texts), len(LEXICAL_FEATURES))


def features(embeddings: torch.Tensor, texts: Sequence[str], lexical: bool) -> torch.Tensor:
    """What a complaint head takes: the embeddings, then the word cues if it uses them."""
    if not lexical:
        return embeddings
    return torch.cat([embeddings, lexical_features(texts)], dim=1)


class ComplaintModel:
    """Probability that a post is a complaint (Preotiuc-Pietro et al., 2019: the post says that
    reality falls short of the author's expectations), from a head over the shared encoder's
    mean-pooled layers (meta head.layers; () is the last layer alone) and optional word cues.

    meta head.trunk (or a top-level trunk) names the branch the layers come from: "base" (the
    default), the shared encoder's own layers, or "finetuned", the built-in sentiment model's
    trunk (its fine-tuned top layers over the shared bottom ones; `finetuned` gives that model,
    else the built-in one for these settings is used).
    """

    def __init__(
        self,
        encoder: str | Path | None = None,
        head_file: Path = COMPLAINT_FILE,
        batch_size: int = 32,
        quantize: str = "none",
        finetuned: EncoderHeadSentiment | None = None,
    ) -> None:
        try:
            meta = json.loads(head_file.with_suffix(".json").read_text())
            self.head = SentimentHead.from_state(load_file(str(head_file)))
            self.lexical = bool(meta["head"]["lexical"])
            self.layers = tuple(int(n) for n in meta["head"]["layers"])
            self.trunk = str(meta["head"].get("trunk", meta.get("trunk", BASE)))
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as exc:
            raise ModelError(f"complaint model file {head_file}: {exc}") from exc
        if self.head.out.out_features != 1:
            raise ModelError(f"complaint model file {head_file}: not a one-logit head")
        if self.trunk not in BRANCHES:
            raise ModelError(
                f"complaint model file {head_file}: trunk {self.trunk!r} is not one of "
                f"{', '.join(BRANCHES)}"
            )
        self.encoder = get_encoder(encoder, quantize)
        if not all(0 <= n <= self.encoder.n_layers for n in self.layers):
            raise ModelError(
                f"complaint model file {head_file}: layers {list(self.layers)} do not fit the "
                f"encoder (ENCODER_MODEL={encoder or ''!r}: {self.encoder.n_layers} layers)"
            )
        want = self.encoder.dim * max(1, len(self.layers))
        want += len(LEXICAL_FEATURES) if self.lexical else 0
        if self.head.in_dim != want:
            raise ModelError(
                f"ENCODER_MODEL={encoder or ''!r}: the complaint head takes {self.head.in_dim} "
                f"features, this encoder gives {want}"
            )
        self.finetuned: EncoderHeadSentiment | None = None
        if self.trunk == FINETUNED:
            self.finetuned = finetuned or builtin_sentiment(encoder, batch_size, quantize)
            self._check_trunk(head_file, meta, self.finetuned)
        self.batch_size = batch_size
        self.meta = meta
        self.name = f"builtin:complaint@{sha256_files(head_file)[:12]}"
        if self.finetuned is not None:
            self.name += f"+trunk@{sha256_files(self.finetuned.file)[:12]}"
        if quantize != "none":
            self.name += f"+{quantize}"

    def _check_trunk(
        self, head_file: Path, meta: dict[str, Any], finetuned: EncoderHeadSentiment
    ) -> None:
        """The fine-tuned trunk is on this encoder and (where the file records one) the very
        sentiment model the head was trained over."""
        if finetuned.encoder is not self.encoder:
            raise ModelError(f"complaint model file {head_file}: its trunk is on another encoder")
        recorded = meta.get("provenance", {}).get("trunk_model", {})
        have = sha256_files(finetuned.file)
        if recorded and have not in recorded.values():
            raise ModelError(
                f"complaint model file {head_file}: trained over the sentiment model "
                f"{recorded}, but SENTIMENT_MODEL=builtin loads {finetuned.file} "
                f"(sha256 {have[:12]}): retrain the complaint head"
            )

    @property
    def read_layers(self) -> tuple[int, ...]:
        """The layers the head reads, side by side ((): the last one)."""
        return self.layers or (self.encoder.n_layers,)

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """The head's layer embeddings (each mean-pooled, L2-normalised) for raw texts."""
        if self.finetuned is None:
            return self.encoder.encode(texts, self.batch_size, layers=self.layers)
        trunk, layers = self.finetuned.trunk, self.read_layers
        out = torch.zeros((len(texts), self.encoder.dim * len(layers)))
        clean = [preprocess(t) for t in texts]
        for idx, batch in batches(clean, self.batch_size):
            pools = trunk.pooled(self.encoder.tokenize(batch), {FINETUNED: set(layers)})
            out[idx] = torch.cat(
                [nn.functional.normalize(pools[FINETUNED, k], p=2, dim=1) for k in layers], dim=1
            )
        return out

    @torch.inference_mode()
    def predict(self, texts: Sequence[str]) -> list[float]:
        """p(complaint) for each text, in input order."""
        if not texts:
            return []
        x = features(self.embed(texts), texts, self.lexical)
        return [float(p) for p in torch.sigmoid(self.head(x)[:, 0]).tolist()]


@functools.lru_cache(maxsize=4)
def _load(encoder: str, batch_size: int, quantize: str) -> ComplaintModel:
    return ComplaintModel(encoder or None, batch_size=batch_size, quantize=quantize)


def get_complaint_model(settings: Settings | None = None) -> ComplaintModel:
    """The process's complaint model (on the same shared encoder as the sentiment model)."""
    if settings is None:
        from socialcare.config import get_settings

        settings = get_settings()
    return _load(settings.encoder_model, settings.score_batch_size, settings.scoring_quantize)
