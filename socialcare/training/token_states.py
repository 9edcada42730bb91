"""Token vectors of many texts after an encoder's frozen lower layers: computed once, cached,
and served in padded batches of similar lengths to the layers being fine-tuned."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm import tqdm

from socialcare.scoring.encoder import MAX_LENGTH, SentenceEncoder, batches, preprocess
from socialcare.training.artifacts import cached


class TokenStates:
    """Variable-length token vectors (fp16) of many texts, stored back to back."""

    def __init__(self, flat: torch.Tensor, offsets: torch.Tensor) -> None:
        self.flat, self.offsets = flat, offsets

    def length(self, i: int) -> int:
        return int(self.offsets[i + 1] - self.offsets[i])

    def batch(self, idx: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(padded float32 states, 0/1 attention mask) for these rows."""
        longest = max(self.length(i) for i in idx)
        states = torch.zeros((len(idx), longest, self.flat.shape[1]))
        mask = torch.zeros((len(idx), longest), dtype=torch.long)
        for row, i in enumerate(idx):
            start, end = int(self.offsets[i]), int(self.offsets[i + 1])
            states[row, : end - start] = self.flat[start:end].float()
            mask[row, : end - start] = 1
        return states, mask


def lower_states(
    enc: SentenceEncoder, texts: list[str], n_lower: int, cache_dir: Path, progress: bool
) -> TokenStates:
    """Token vectors after the bottom n_lower layers, cached under a hash of their inputs."""

    def compute() -> dict[str, torch.Tensor]:
        parts: list[torch.Tensor | None] = [None] * len(texts)
        clean = [preprocess(t) for t in texts]
        with tqdm(total=len(texts), desc="lower layers", unit="text", disable=not progress) as bar:
            for idx, batch in batches(clean, 64):
                tokens = enc.tokenize(batch)
                hidden = enc.lower(tokens, n_lower)
                for row, i in enumerate(idx):
                    parts[i] = hidden[row, : int(tokens["attention_mask"][row].sum())].half()
                bar.update(len(idx))
        lengths = torch.tensor([0] + [len(p) for p in parts if p is not None])
        flat = torch.cat([p for p in parts if p is not None])
        return {"flat": flat, "offsets": torch.cumsum(lengths, 0)}

    key = [enc.name, str(MAX_LENGTH), str(n_lower), *texts]
    saved = cached(cache_dir, "states", key, compute)
    return TokenStates(saved["flat"], saved["offsets"])


def length_batches(
    states: TokenStates, rows: list[int], size: int, gen: torch.Generator
) -> list[list[int]]:
    """Shuffled batches of similar lengths (less padding), in a shuffled order."""
    order = [rows[i] for i in torch.randperm(len(rows), generator=gen).tolist()]
    chunk = size * 50
    out = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=states.length)
        out += [part[i : i + size] for i in range(0, len(part), size)]
    return [out[i] for i in torch.randperm(len(out), generator=gen).tolist()]
