"""Token lists of a large corpus kept on disk: word ids (int32) and offsets (int64) in
memory-mapped files, plus the vocabulary of distinct words.

A build segments notes a chunk at a time; :class:`TokenTableWriter` appends each chunk's token
lists, and :meth:`TokenTableWriter.close` returns a :class:`TokenTable`, a read-only sequence of
``list[str]`` (``len``, ``table[i]``, ``table[lo:hi]``, iteration in blocks). Its memory is the
vocabulary (one interned string per distinct word); the ids (4 bytes a token) and offsets are
file pages the OS reads on use, so the per-note token lists no longer sit in private memory.
Words come back as the vocabulary's own string objects: reading never copies a word.
"""
from __future__ import annotations

import sys
from array import array
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from miner.topics.blocks import row_blocks

IDS_FILE, OFFSETS_FILE = "token_ids.int32", "token_offsets.int64"


class TokenTableWriter:
    """Append token lists chunk by chunk to files in ``directory``; :meth:`close` maps them."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._ids = open(self.directory / IDS_FILE, "wb")
        self._offsets = open(self.directory / OFFSETS_FILE, "wb")
        self._offsets.write(np.zeros(1, np.int64).tobytes())
        self._index: dict[str, int] = {}
        self._words: list[str] = []
        self._total = 0

    def append(self, token_lists: Iterable[list[str]]) -> None:
        index, words = self._index, self._words
        ids, offsets = array("i"), array("q")          # 4 and 8 bytes an entry, not a Python int's 36
        for tokens in token_lists:
            for word in tokens:
                i = index.get(word)
                if i is None:
                    i = index[word] = len(words)
                    words.append(sys.intern(word))
                ids.append(i)
            offsets.append(self._total + len(ids))
        self._ids.write(ids.tobytes())
        self._offsets.write(offsets.tobytes())
        self._total += len(ids)

    def close(self) -> "TokenTable":
        self._ids.close()
        self._offsets.close()
        offsets = np.memmap(self.directory / OFFSETS_FILE, dtype=np.int64, mode="r")
        ids = (np.memmap(self.directory / IDS_FILE, dtype=np.int32, mode="r") if self._total
               else np.zeros(0, np.int32))                  # numpy cannot map an empty file
        return TokenTable(self._words, ids, offsets)


class TokenTable:
    """Read-only sequence of per-note token lists over word ids and offsets (see the module)."""

    def __init__(self, words: list[str], ids: np.ndarray, offsets: np.ndarray):
        if len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(ids):
            raise ValueError("offsets must start at 0 and end at the number of ids")
        self._words = np.array(words, dtype=object) if words else np.zeros(0, dtype=object)
        self._ids, self._offsets = ids, offsets

    @classmethod
    def from_lists(cls, token_lists: Iterable[list[str]], directory: str | Path) -> "TokenTable":
        writer = TokenTableWriter(directory)
        writer.append(token_lists)
        return writer.close()

    @property
    def vocabulary(self) -> list[str]:
        return self._words.tolist()

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, key):
        if isinstance(key, slice):
            lo, hi, step = key.indices(len(self))
            if step != 1:
                raise ValueError("TokenTable slices take a step of 1")
            return self._rows(lo, max(lo, hi))
        i = int(key)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"token list {key} of {len(self)}")
        return self._words[self._ids[self._offsets[i]:self._offsets[i + 1]]].tolist()

    def _rows(self, lo: int, hi: int) -> list[list[str]]:
        bounds = np.asarray(self._offsets[lo:hi + 1])
        flat = self._words[self._ids[bounds[0]:bounds[-1]]].tolist() if hi > lo else []
        cuts = (bounds - bounds[0]).tolist()
        return [flat[a:b] for a, b in zip(cuts[:-1], cuts[1:])]

    def __iter__(self) -> Iterator[list[str]]:
        for lo, hi in row_blocks(len(self)):
            yield from self._rows(lo, hi)
