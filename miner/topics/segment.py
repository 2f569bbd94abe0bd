"""XHS-aware Chinese segmentation with jieba.

Pipeline per text: extract ``#话题#`` / ``#话题[话题]#`` hashtags as whole tokens → strip emoji and
``[表情]`` codes → NFKC (full-width → half-width) → traditional → simplified → lowercase Latin →
jieba with the project's own ``jieba.Tokenizer`` (never the global one) and user dictionaries →
drop stopwords, punctuation, numbers and single characters.
"""
from __future__ import annotations

import multiprocessing
import os
import re
import threading
import unicodedata
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Iterable, Sequence

import jieba

jieba.setLogLevel(60)   # silence jieba's dictionary-load chatter on stderr

from miner.config import REPO_ROOT

DICTS_DIR = REPO_ROOT / "data" / "dicts"
DEFAULT_USER_DICT = DICTS_DIR / "xhs_user_dict.txt"
PLATFORM_STOPWORDS = DICTS_DIR / "platform_stopwords.txt"
MERGED_STOPWORDS = DICTS_DIR / "stopwords_merged.txt"   # copy of shared chinese-stopwords/merged list

# #话题# or #话题[话题]# (XHS appends "[话题]" to topic tags); tag text has no '#' or newline.
HASHTAG_RE = re.compile(r"#([^#\n\[\]]{1,30})(?:\[话题\])?#")
BRACKET_EMOJI_RE = re.compile(r"\[[\u4e00-\u9fffA-Za-z]{1,6}(?:R|H)?\]")   # [笑哭R], [哭惹R], [doge]
EMOJI_RE = re.compile(
    "[\U0001F000-\U0001FAFF\U00002600-\U000027BF\U0001F900-\U0001F9FF\U00002B00-\U00002BFF"
    "\U0000FE00-\U0000FE0F\U0000200D\U000020E3\U00003030\U0000303D\U00003297\U00003299]+"
)
URL_RE = re.compile(r"(?:https?://|www\.)[^\s\u4e00-\u9fff]+|\b[a-z0-9.-]+\.(?:com|cn|net)\S*", re.I)
TOKEN_KEEP_RE = re.compile(r"[\u4e00-\u9fffa-z]")   # a token must hold a CJK char or a Latin letter


def strip_emoji(text: str) -> str:
    return EMOJI_RE.sub(" ", BRACKET_EMOJI_RE.sub(" ", text))


def count_emoji(text: str) -> int:
    return sum(len(m) for m in EMOJI_RE.findall(text)) + len(BRACKET_EMOJI_RE.findall(text))


def extract_hashtags(text: str) -> tuple[list[str], str]:
    """Return (hashtags in order, text with the hashtags removed)."""
    tags = [t.strip() for t in HASHTAG_RE.findall(text) if t.strip()]
    return tags, HASHTAG_RE.sub(" ", text)


def _to_simplified(text: str) -> str:
    try:
        import zhconv
    except ImportError:   # optional: without zhconv, traditional text is segmented as is
        return text
    return zhconv.convert(text, "zh-cn")


def normalize_text(text: str, to_simplified: bool = True) -> str:
    text = unicodedata.normalize("NFKC", text or "")
    if to_simplified:
        text = _to_simplified(text)
    return text.lower()


def read_word_list(path: str | os.PathLike) -> list[str]:
    """One entry per line; blank lines and lines starting with '#' are ignored."""
    words = []
    with open(path, encoding="utf-8-sig") as fh:
        for line in fh:
            line = line.strip()
            if line and not line.startswith("#"):
                words.append(line)
    return words


def default_stopword_paths() -> list[Path]:
    return [MERGED_STOPWORDS, PLATFORM_STOPWORDS]


class JiebaSegmenter:
    """Segment Chinese notes into topic-bearing tokens.

    Parameters
    ----------
    user_dict_paths : extra jieba dictionaries (``word [freq] [pos]`` per line), added to the
        bundled XHS slang dictionary.
    stopword_paths : stopword files; default is the merged Chinese list plus platform filler.
    extra_stopwords : more stopwords given inline.
    keep_hashtags : emit hashtags as whole tokens.
    to_simplified : convert traditional characters to simplified (needs ``zhconv``).
    n_jobs : processes for :meth:`segment_many` on large corpora (``-1`` = all cores).
    """

    def __init__(self, user_dict_paths: Sequence[str | os.PathLike] = (), stopword_paths=None,
                 extra_stopwords: Iterable[str] = (), keep_hashtags: bool = True,
                 to_simplified: bool = True, n_jobs: int = 1):
        self.user_dict_paths = tuple(user_dict_paths)
        self.stopword_paths = stopword_paths
        self.extra_stopwords = tuple(extra_stopwords)
        self.keep_hashtags = keep_hashtags
        self.to_simplified = to_simplified
        self.n_jobs = n_jobs
        self._tokenizer = None
        self._stopwords = None
        self._phrase_joins: list[tuple[re.Pattern, str]] = []

    # -- lazy setup (jieba's dictionary load takes ~1 s) -------------------------------------
    def _setup(self) -> None:
        if self._tokenizer is not None:
            return
        tokenizer = jieba.Tokenizer()
        tokenizer.initialize()
        for path in (DEFAULT_USER_DICT, *self.user_dict_paths):
            self._load_user_dict(tokenizer, Path(path))
        paths = default_stopword_paths() if self.stopword_paths is None else list(self.stopword_paths)
        stop = set(self.extra_stopwords)
        for path in paths:
            if not Path(path).exists():
                raise FileNotFoundError(f"stopword file not found: {path}")
            stop.update(w.lower() for w in read_word_list(path))
        self._stopwords = frozenset(stop)
        self._tokenizer = tokenizer

    def _load_user_dict(self, tokenizer: jieba.Tokenizer, path: Path) -> None:
        if not path.exists():
            raise FileNotFoundError(f"user dictionary not found: {path}")
        for entry in read_word_list(path):
            parts = entry.split()
            # trailing numeric freq and alphabetic POS are optional; the word itself may hold spaces
            freq, tag = None, None
            if len(parts) >= 3 and parts[-2].isdigit() and parts[-1].isalpha():
                freq, tag, parts = int(parts[-2]), parts[-1], parts[:-2]
            elif len(parts) >= 2 and parts[-1].isdigit():
                freq, parts = int(parts[-1]), parts[:-1]
            word = normalize_text(" ".join(parts), self.to_simplified)
            if " " in word:   # jieba never keeps spaces inside a token: join the phrase first
                joined = word.replace(" ", "")
                self._phrase_joins.append((re.compile(r"\s+".join(map(re.escape, word.split()))), joined))
                word = joined
            tokenizer.add_word(word, freq, tag)

    @property
    def stopwords(self) -> frozenset[str]:
        self._setup()
        return self._stopwords

    # -- segmentation ---------------------------------------------------------------------------
    def segment(self, text: str) -> list[str]:
        """Tokens of one text: hashtags first (as whole tokens), then filtered jieba words."""
        self._setup()
        tags, rest = extract_hashtags(text or "")
        rest = normalize_text(strip_emoji(URL_RE.sub(" ", rest)), self.to_simplified)
        for pattern, joined in self._phrase_joins:
            rest = pattern.sub(joined, rest)
        tokens = []
        if self.keep_hashtags:
            tokens = [normalize_text(t, self.to_simplified) for t in tags]
        for word in self._tokenizer.lcut(rest):
            word = word.strip()
            if len(word) < 2 or word in self._stopwords or not TOKEN_KEEP_RE.search(word):
                continue
            tokens.append(word)
        return tokens

    def segment_many(self, texts: Sequence[str], show_progress: bool = False) -> list[list[str]]:
        """Segment a corpus; over forked worker processes when it is large (``n_jobs``).

        Forking is only safe while this process runs no other threads: inside Streamlit or a server
        the corpus is segmented serially (embedding costs ~100× more than segmenting anyway).
        Spawned workers are no alternative there: they re-run the page script Streamlit installs
        as ``__main__``.
        """
        n_jobs = (os.cpu_count() or 1) if self.n_jobs == -1 else max(1, self.n_jobs)
        if n_jobs == 1 or len(texts) < PARALLEL_MIN_TEXTS or threading.active_count() > 1:
            return [self.segment(t) for t in _progress(texts, show_progress, "分词 segment")]
        params = {**self.get_params(), "n_jobs": 1}
        chunks = [list(texts[i:i + PARALLEL_CHUNK]) for i in range(0, len(texts), PARALLEL_CHUNK)]
        out: list[list[str]] = []
        with ProcessPoolExecutor(n_jobs, mp_context=multiprocessing.get_context("fork"),
                                 initializer=_init_worker, initargs=(params,)) as pool, \
                _progress_bar(len(texts), show_progress, "分词 segment") as bar:
            for part in pool.map(_segment_in_worker, chunks):
                out.extend(part)
                bar.update(len(part))
        return out

    def get_params(self) -> dict:
        return {"user_dict_paths": self.user_dict_paths, "stopword_paths": self.stopword_paths,
                "extra_stopwords": self.extra_stopwords, "keep_hashtags": self.keep_hashtags,
                "to_simplified": self.to_simplified, "n_jobs": self.n_jobs}


PARALLEL_MIN_TEXTS = 20_000    # below this, starting worker processes costs more than it saves
PARALLEL_CHUNK = 2_000         # texts per task: keeps the progress bar moving
_WORKER: "JiebaSegmenter | None" = None


def _init_worker(params: dict) -> None:
    global _WORKER
    _WORKER = JiebaSegmenter(**params)
    _WORKER.segment("预热")          # load the dictionary once per process, not per task


def _segment_in_worker(texts: list[str]) -> list[list[str]]:
    return [_WORKER.segment(t) for t in texts]


def _progress(items, enabled: bool, desc: str):
    if not enabled:
        return items
    from tqdm.auto import tqdm
    return tqdm(items, desc=desc, unit="note")


def _progress_bar(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="note", disable=not enabled)


def note_text(title: str, body: str, tags: Iterable[str] | None = None) -> str:
    """The text a note is embedded and segmented from: title, body and its hashtags."""
    parts = [str(title or "").strip(), str(body or "").strip()]
    if isinstance(tags, str):
        tags = re.split(r"[|,，\s]+", tags)
    tag_text = " ".join(f"#{t}#" for t in (() if tags is None else tags) if t)
    return "\n".join(p for p in (*parts, tag_text) if p)
