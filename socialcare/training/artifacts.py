"""What trainers write and keep: a model's sidecar, and tensors cached under their inputs' hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file


def write_sidecar(artifact: Path, meta: dict[str, Any]) -> None:
    """The artifact's metrics and provenance, as the .json beside it."""
    sidecar = artifact.with_suffix(".json")
    sidecar.write_text(json.dumps(meta, indent=2) + "\n")
    sidecar.chmod(0o644)


def cached(
    cache_dir: Path,
    prefix: str,
    key: Sequence[str],
    compute: Callable[[], dict[str, torch.Tensor]],
) -> dict[str, torch.Tensor]:
    """compute()'s tensors, from cache_dir/PREFIX-HASH.safetensors when stored there under the
    hash of key (the inputs that decide them), else computed and stored."""
    digest = hashlib.sha256("\n".join(key).encode()).hexdigest()[:24]
    path = cache_dir / f"{prefix}-{digest}.safetensors"
    if path.exists():
        return load_file(str(path))
    tensors = {name: t.contiguous() for name, t in compute().items()}
    cache_dir.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return tensors
