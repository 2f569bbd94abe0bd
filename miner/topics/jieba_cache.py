"""A loaded jieba dictionary (main dictionary + lexicons + user dictionaries) kept on disk in a form
that loads fast.

jieba caches its own main dictionary with ``marshal``; loading that half a million word and prefix
entries takes ~1.4 s on 2 cores, and the lexicons then cost another ~0.1 s of ``add_word`` calls.
The same entries as one UTF-8 word list plus an int64 array load in ~0.35 s, lexicons included.
The app's first search waits on this load, and so does every build and update process.

Layout: ``<root>/jieba-<key>/`` with ``words.txt`` (one entry per line), ``freq.npy`` and
``info.json`` (total, user word tags, phrase joins, dictionary words). ``key`` digests jieba's
version, its dictionary file and every lexicon file (path, size, mtime) and ``to_simplified``, so an
edited lexicon gets a new entry. Written atomically (temp dir + rename); an entry that cannot be
read is ignored and the dictionary is loaded the slow way. No pickle: only text, JSON and ``.npy``.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import jieba
import numpy as np

__all__ = ["cache_root", "dictionary_key", "load", "save"]

FORMAT = 1


def cache_root() -> Path:
    """``MINER_JIEBA_CACHE`` if set, else ``<temp dir>/miner-jieba`` (beside jieba's own cache)."""
    return Path(os.environ.get("MINER_JIEBA_CACHE") or Path(tempfile.gettempdir()) / "miner-jieba")


def _main_dictionary() -> Path:
    return Path(jieba.__file__).resolve().parent / "dict.txt"


def dictionary_key(files_key: tuple) -> str:
    """The entry name for ``files_key`` (the segmenter's in-process key: ``to_simplified`` and each
    lexicon's resolved path, size and mtime) plus the cache format, jieba's version and its
    dictionary file."""
    main = _main_dictionary()
    stat = main.stat()
    parts = (f"format={FORMAT}", f"jieba={jieba.__version__}", f"{main}:{stat.st_size}:{stat.st_mtime_ns}",
             repr(files_key))
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:20]


def load(key: str):
    """``(tokenizer, joins, words)`` from the cache entry ``key``, or None when absent or unreadable."""
    entry = cache_root() / f"jieba-{key}"
    try:
        info = json.loads((entry / "info.json").read_text(encoding="utf-8"))
        words = (entry / "words.txt").read_text(encoding="utf-8").split("\n")
        freqs = np.load(entry / "freq.npy", allow_pickle=False)
        if info.get("format") != FORMAT or len(words) != len(freqs):
            return None
    except (OSError, ValueError, KeyError):
        return None
    tokenizer = jieba.Tokenizer()
    tokenizer.FREQ = dict(zip(words, freqs.tolist()))
    tokenizer.total = int(info["total"])
    tokenizer.user_word_tag_tab = dict(info["tags"])
    tokenizer.initialized = True
    joins = tuple((re.compile(pattern), joined) for pattern, joined in info["joins"])
    return tokenizer, joins, frozenset(info["words"])


def save(key: str, tokenizer: jieba.Tokenizer, joins, words) -> bool:
    """Write the entry ``key`` (atomic; an existing entry is kept). False if it cannot be stored."""
    root = cache_root()
    entry = root / f"jieba-{key}"
    entries = list(tokenizer.FREQ)
    if entry.exists() or any("\n" in w for w in entries):
        return False
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".jieba-{key}.", dir=root))
    except OSError:
        return False
    try:
        (staging / "words.txt").write_text("\n".join(entries), encoding="utf-8")
        np.save(staging / "freq.npy", np.fromiter(tokenizer.FREQ.values(), dtype=np.int64, count=len(entries)))
        info = {"format": FORMAT, "total": int(tokenizer.total), "tags": dict(tokenizer.user_word_tag_tab),
                "joins": [[p.pattern, joined] for p, joined in joins], "words": sorted(words)}
        (staging / "info.json").write_text(json.dumps(info, ensure_ascii=False), encoding="utf-8")
        staging.rename(entry)
        return True
    except OSError:            # another process stored it first, or the disk is full: load slowly next time
        return False
    finally:
        shutil.rmtree(staging, ignore_errors=True)
