"""Sentiment models: the built-in MiniLM encoder with a trained head, or any HF classifier."""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file
from torch import nn

from socialcare.errors import ModelError
from socialcare.scoring.base import LABELS, SentimentModel
from socialcare.scoring.encoder import (
    BASE,
    DEFAULT_ENCODER_NAME,
    FINETUNED,
    MAX_LENGTH,
    SentenceEncoder,
    Trunk,
    batches,
    default_encoder_dir,
    from_pretrained,
    get_encoder,
    mean_pool,
    preprocess,
    quantize_linear,
    run_layers,
    sha256_files,
)

if TYPE_CHECKING:
    from socialcare.config import Settings

__all__ = [
    "DEFAULT_ENCODER_NAME",
    "FINETUNED_FILE",
    "HEAD_FILE",
    "MAX_LENGTH",
    "EncoderHeadSentiment",
    "HFSequenceSentiment",
    "SentenceEncoder",
    "SentimentHead",
    "builtin_sentiment",
    "default_encoder_dir",
    "default_head_file",
    "get_encoder",
    "get_sentiment_model",
    "label_indices",
    "preprocess",
    "sha256_files",
]

MODELS_DIR = Path(__file__).resolve().parent / "models"
HEAD_FILE = MODELS_DIR / "sentiment_head.safetensors"
FINETUNED_FILE = MODELS_DIR / "sentiment_finetuned.safetensors"

_SYNONYMS = {
    "negative": "negative",
    "neg": "negative",
    "neutral": "neutral",
    "neu": "neutral",
    "positive": "positive",
    "pos": "positive",
}
_LABEL_N = re.compile(r"label_(\d+)")


class SentimentHead(nn.Module):
    """Linear (hidden=0) or one-hidden-layer MLP over sentence embeddings."""

    def __init__(
        self, in_dim: int, hidden: int = 0, dropout: float = 0.0, n_out: int = len(LABELS)
    ) -> None:
        super().__init__()
        self.hidden = nn.Linear(in_dim, hidden) if hidden else None
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden or in_dim, n_out)

    @property
    def in_dim(self) -> int:
        """Size of the embeddings the head takes."""
        return (self.hidden or self.out).in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (in LABELS order for a sentiment head)."""
        if self.hidden is not None:
            x = self.dropout(nn.functional.gelu(self.hidden(x)))
        logits: torch.Tensor = self.out(x)
        return logits

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> SentimentHead:
        """Rebuild a head from its saved tensors (shape tells linear from MLP)."""
        if "hidden.weight" in state:
            hidden, in_dim = state["hidden.weight"].shape
        else:
            hidden, in_dim = 0, state["out.weight"].shape[1]
        head = cls(int(in_dim), int(hidden), n_out=int(state["out.weight"].shape[0]))
        head.load_state_dict(state)
        return head.eval()


def _as_dicts(probs: torch.Tensor) -> list[dict[str, float]]:
    """Rows of a (n x 3) probability tensor as dicts in LABELS order."""
    return [dict(zip(LABELS, row, strict=True)) for row in probs.tolist()]


def default_head_file() -> Path:
    """The shipped default: the fine-tuned model where present, else the frozen-encoder head."""
    return FINETUNED_FILE if FINETUNED_FILE.exists() else HEAD_FILE


def split_state(
    state: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(top-layer tensors, head tensors) of a saved model, as float32, prefixes removed."""
    layers = {k[len("layers.") :]: v.float() for k, v in state.items() if k.startswith("layers.")}
    head = {
        k.removeprefix("head."): v.float() for k, v in state.items() if not k.startswith("layers.")
    }
    return layers, head


class EncoderHeadSentiment:
    """The built-in model: the MiniLM encoder, mean pooling and a small trained head.

    The file holds either a head alone (over the frozen encoder's L2-normalised embeddings) or
    `layers.*`, the fine-tuned top encoder layers (loaded over copies of the shared encoder's
    own; the layers below are shared), and `head.*`, over their plain mean-pooled output.
    """

    def __init__(
        self,
        encoder: str | Path | None = None,
        head_file: Path | None = None,
        batch_size: int = 32,
        quantize: str = "none",
    ) -> None:
        head_file = head_file or default_head_file()
        try:
            meta = json.loads(head_file.with_suffix(".json").read_text())
            layer_state, head_state = split_state(load_file(str(head_file)))
            self.head = SentimentHead.from_state(head_state)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelError(f"SENTIMENT_MODEL=builtin: head file {head_file}: {exc}") from exc
        if tuple(meta.get("labels", ())) != LABELS:
            raise ModelError(f"SENTIMENT_MODEL=builtin: {head_file} labels are not {LABELS}")
        self.encoder = get_encoder(encoder, quantize)
        if self.head.in_dim != self.encoder.dim:
            raise ModelError(
                f"ENCODER_MODEL={encoder!r}: {self.encoder.dim}-d embeddings, head wants "
                f"{self.head.in_dim}-d"
            )
        self.n_top = self._n_top(meta, head_file, encoder)
        self.top = self._top_layers(layer_state, encoder)
        if quantize == "int8" and self.n_top:
            self.top = quantize_linear(self.top).eval()  # type: ignore[assignment]
        self.trunk = Trunk(self.encoder, self.top)
        # What the head reads: the top layer's plain mean pool of the fine-tuned branch, or
        # the frozen encoder's L2-normalised embedding.
        self.reads = FINETUNED if self.n_top else BASE
        self.normalised = not self.n_top
        self.batch_size = batch_size
        self.file = head_file
        self.meta = meta
        self.name = f"builtin:minilm-l6-head@{sha256_files(head_file)[:12]}"
        if self.n_top:
            self.name += f"+top{self.n_top}"
        if encoder:
            self.name += f"+encoder={encoder}"
        if quantize != "none":
            self.name += f"+{quantize}"

    def _n_top(self, meta: dict[str, Any], head_file: Path, encoder: str | Path | None) -> int:
        """The file's finetuned_layers, checked against the encoder's depth."""
        n_top = meta.get("finetuned_layers", 0)
        if type(n_top) is not int or not 0 <= n_top <= self.encoder.n_layers:
            raise ModelError(
                f"SENTIMENT_MODEL=builtin: {head_file}: finetuned_layers={n_top!r} does not fit "
                f"the encoder (ENCODER_MODEL={encoder or ''!r}: {self.encoder.n_layers} layers)"
            )
        return n_top

    def _top_layers(
        self, state: dict[str, torch.Tensor], encoder: str | Path | None
    ) -> nn.ModuleList:
        """Copies of the encoder's top n_top layers with the fine-tuned weights loaded."""
        if not self.n_top:
            return nn.ModuleList()
        source = self.encoder.layers[-self.n_top :]
        if self.encoder.quantize == "none":
            top = copy.deepcopy(source)
        else:  # fresh full-precision layers of the same kind take the fine-tuned weights
            top = nn.ModuleList(type(layer)(self.encoder.model.config) for layer in source)
        try:
            top.load_state_dict(state)
        except RuntimeError as exc:
            msg = (
                f"SENTIMENT_MODEL=builtin: the fine-tuned layers do not fit "
                f"ENCODER_MODEL={encoder or ''!r}: {exc}"
            )
            raise ModelError(msg) from exc
        return top.eval()

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """What the head takes, for raw texts in input order."""
        if not self.n_top:
            return self.encoder.encode(texts, self.batch_size)
        out = torch.zeros((len(texts), self.encoder.dim))
        clean = [preprocess(t) for t in texts]
        for idx, batch in batches(clean, self.batch_size):
            enc = self.encoder.tokenize(batch)
            with torch.inference_mode():
                hidden = self.encoder.lower(enc, self.encoder.n_layers - self.n_top)
                hidden = run_layers(self.top, hidden, enc["attention_mask"])
                out[idx] = mean_pool(hidden, enc["attention_mask"])
        return out

    @torch.inference_mode()
    def predict(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Probabilities over LABELS for each text."""
        if not texts:
            return []
        return _as_dicts(torch.softmax(self.head(self.embed(texts)), dim=-1))


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

    def __init__(self, model: str, batch_size: int = 32, quantize: str = "none") -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        try:
            self.tokenizer = from_pretrained(AutoTokenizer.from_pretrained, model)
            self.model = from_pretrained(
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
        if quantize == "int8":
            self.model = quantize_linear(self.model).eval()
            self.name += "+int8"

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
        for idx, batch in batches(clean, self.batch_size):
            enc = self.tokenizer(
                batch, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt"
            )
            probs = torch.softmax(self.model(**enc).logits.float(), dim=-1)
            mapped = torch.zeros((len(batch), len(LABELS))).index_add_(1, target, probs)
            out[idx] = mapped
        return _as_dicts(out)


@functools.lru_cache(maxsize=4)
def _builtin(encoder: str, batch_size: int, quantize: str) -> EncoderHeadSentiment:
    return EncoderHeadSentiment(encoder or None, batch_size=batch_size, quantize=quantize)


def builtin_sentiment(
    encoder: str | Path | None, batch_size: int, quantize: str
) -> EncoderHeadSentiment:
    """The process's built-in sentiment model for these ENCODER_MODEL, SCORE_BATCH_SIZE and
    SCORING_QUANTIZE values (what SENTIMENT_MODEL=builtin loads)."""
    return _builtin(str(encoder) if encoder else "", batch_size, quantize)


@functools.lru_cache(maxsize=4)
def _load(choice: str, encoder: str, batch_size: int, quantize: str) -> SentimentModel:
    """Load a model once per process for these setting values."""
    if choice.strip().lower() == "builtin":
        return builtin_sentiment(encoder, batch_size, quantize)
    return HFSequenceSentiment(choice.strip(), batch_size=batch_size, quantize=quantize)


def quantized(model: EncoderHeadSentiment) -> EncoderHeadSentiment:
    """The same built-in model again, in dynamic int8 (what SCORING_QUANTIZE=int8 loads)."""
    return EncoderHeadSentiment(
        None if model.encoder.name == DEFAULT_ENCODER_NAME else model.encoder.name,
        batch_size=model.batch_size,
        quantize="int8",
    )


def get_sentiment_model(settings: Settings | None = None) -> SentimentModel:
    """The process's sentiment model, chosen by SENTIMENT_MODEL (and ENCODER_MODEL)."""
    if settings is None:
        from socialcare.config import get_settings

        settings = get_settings()
    return _load(
        settings.sentiment_model,
        settings.encoder_model,
        settings.score_batch_size,
        settings.scoring_quantize,
    )
