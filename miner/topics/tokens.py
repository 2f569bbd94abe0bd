"""Token lists of a large corpus kept on disk: word ids (int32) and offsets (int64) in
memory-mapped files, plus the vocabulary of distinct words as one Arrow string array.

A build segments notes a chunk at a time; :class:`TokenTableWriter` appends each chunk's token
lists, and :meth:`TokenTableWriter.close` returns a :class:`TokenTable`, a read-only sequence of
``list[str]`` (``len``, ``table[i]``, ``table[lo:hi]``, iteration in blocks). The ids (4 bytes a
token) and offsets are file pages the OS reads on use. The vocabulary is Arrow's UTF-8 buffer and
offsets (a word's bytes + 4), not a Python string, dict entry and int per distinct word: a corpus
of 10M notes with a rare word each keeps ~0.1 GB of vocabulary instead of ~2 GB. Words are made
Python strings when read, a block at a time. :meth:`TokenTable.document_frequencies` and
:meth:`TokenTable.id_blocks` let counting stages (labelling's c-TF-IDF) work on the ids alone.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from miner.topics.blocks import row_blocks

IDS_FILE, OFFSETS_FILE = "token_ids.int32", "token_offsets.int64"


class TokenTableWriter:
    """Append token lists chunk by chunk to files in ``directory``; :meth:`close` maps them.
    Word ids follow first appearance (the first new word of the corpus is 0, the next 1, …)."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._ids = open(self.directory / IDS_FILE, "wb")
        self._offsets = open(self.directory / OFFSETS_FILE, "wb")
        self._offsets.write(np.zeros(1, np.int64).tobytes())
        self._vocabulary = pa.array([], pa.string())
        self._total = 0

    def append(self, token_lists: Iterable[list[str]]) -> None:
        token_lists = token_lists if isinstance(token_lists, list) else list(token_lists)
        lengths = np.fromiter((len(t) for t in token_lists), np.int64, len(token_lists))
        words = pa.array([w for tokens in token_lists for w in tokens], pa.string())
        encoded = words.dictionary_encode()             # the chunk's distinct words, in first-appearance order
        known = pc.index_in(encoded.dictionary, value_set=self._vocabulary).to_numpy(zero_copy_only=False)
        new = np.isnan(known) if known.dtype.kind == "f" else np.zeros(len(known), bool)
        global_id = np.where(new, 0, np.nan_to_num(known)).astype(np.int64)
        global_id[new] = len(self._vocabulary) + np.arange(int(new.sum()))
        if new.any():
            self._vocabulary = pa.concat_arrays([self._vocabulary, encoded.dictionary.filter(pa.array(new))])
        ids = global_id[encoded.indices.to_numpy(zero_copy_only=False)].astype(np.int32)
        self._ids.write(ids.tobytes())
        self._offsets.write((self._total + np.cumsum(lengths)).astype(np.int64).tobytes())
        self._total += len(ids)

    def close(self) -> "TokenTable":
        self._ids.close()
        self._offsets.close()
        offsets = np.memmap(self.directory / OFFSETS_FILE, dtype=np.int64, mode="r")
        ids = (np.memmap(self.directory / IDS_FILE, dtype=np.int32, mode="r") if self._total
               else np.zeros(0, np.int32))                  # numpy cannot map an empty file
        return TokenTable(self._vocabulary, ids, offsets)


class TokenTable:
    """Read-only sequence of per-note token lists over word ids and offsets (see the module)."""

    def __init__(self, words, ids: np.ndarray, offsets: np.ndarray):
        if len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(ids):
            raise ValueError("offsets must start at 0 and end at the number of ids")
        self._words = words if isinstance(words, pa.Array) else pa.array(list(words), pa.string())
        self._ids, self._offsets = ids, offsets

    @classmethod
    def from_lists(cls, token_lists: Iterable[list[str]], directory: str | Path) -> "TokenTable":
        writer = TokenTableWriter(directory)
        writer.append(token_lists)
        return writer.close()

    @property
    def vocabulary(self) -> list[str]:
        return self._words.to_pylist()

    def words(self, word_ids) -> list[str]:
        """The words of ``word_ids`` (vocabulary positions)."""
        return self._words.take(pa.array(np.asarray(word_ids, dtype=np.int64))).to_pylist()

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
        return self.words(self._ids[self._offsets[i]:self._offsets[i + 1]])

    def _rows(self, lo: int, hi: int) -> list[list[str]]:
        bounds = np.asarray(self._offsets[lo:hi + 1])
        flat = self.words(self._ids[bounds[0]:bounds[-1]]) if hi > lo else []
        cuts = (bounds - bounds[0]).tolist()
        return [flat[a:b] for a, b in zip(cuts[:-1], cuts[1:])]

    def arrow_slice(self, lo: int, hi: int) -> pa.ListArray:
        """Notes ``lo:hi`` as an Arrow ``list<string>`` array, made without Python strings."""
        lo, hi = max(0, lo), min(len(self), hi)
        bounds = np.asarray(self._offsets[lo:max(lo, hi) + 1])
        words = self._words.take(pa.array(np.asarray(self._ids[bounds[0]:bounds[-1]], dtype=np.int64)))
        return pa.ListArray.from_arrays(pa.array((bounds - bounds[0]).astype(np.int32)), words)

    def __iter__(self) -> Iterator[list[str]]:
        for lo, hi in row_blocks(len(self)):
            yield from self._rows(lo, hi)

    def id_blocks(self, chunk_rows: int | None = None) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
        """``(lo, hi, note_of_token, word_ids)`` per block of notes: each token's note (0-based
        within the block) and word id, read from the mapped files."""
        blocks = row_blocks(len(self), chunk_rows) if chunk_rows else row_blocks(len(self))
        for lo, hi in blocks:
            bounds = np.asarray(self._offsets[lo:hi + 1])
            note_of = np.repeat(np.arange(hi - lo), np.diff(bounds))
            yield lo, hi, note_of, np.asarray(self._ids[bounds[0]:bounds[-1]], dtype=np.int64)

    def positions_in(self, words) -> np.ndarray:
        """For each vocabulary word of the table, its position in ``words`` (−1 when absent)."""
        found = pc.index_in(self._words, value_set=pa.array(list(words), pa.string()))
        return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)

    def document_frequencies(self) -> np.ndarray:
        """How many notes hold each vocabulary word (a note counts a word once)."""
        counts = np.zeros(len(self._words), np.int64)
        for _, _, note_of, ids in self.id_blocks():
            pairs = np.unique(note_of * len(self._words) + ids)
            counts += np.bincount(pairs % len(self._words), minlength=len(self._words))
        return counts
