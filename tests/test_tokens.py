import numpy as np
import pyarrow as pa
import pytest

from miner.topics.tokens import TokenTable, TokenTableWriter


def test_token_table_reads_back_real_segmented_notes(review_vectors, tmp_path):
    tokens, _ = review_vectors
    lists = [list(t) for t in tokens] + [[]]                    # an empty note too
    writer = TokenTableWriter(tmp_path)
    for lo in range(0, len(lists), 97):                          # appended chunk by chunk, as a build does
        writer.append(lists[lo:lo + 97])
    table = writer.close()
    assert len(table) == len(lists)
    assert [table[i] for i in range(len(table))] == lists
    assert list(table) == lists and table[10:50] == lists[10:50] and table[-1] == [] and table[5:5] == []
    assert len(table.vocabulary) == len({w for t in lists for w in t})
    # ids in first-appearance order; the vocabulary is one Arrow string array, not a string per word
    assert table.vocabulary == list(dict.fromkeys(w for t in lists for w in t))
    assert isinstance(table._words, pa.Array) and table._words.type == pa.string()
    # counting works on the ids alone: each note counts a word once
    expected = {w: sum(1 for t in lists if w in t) for w in table.vocabulary}
    assert dict(zip(table.vocabulary, table.document_frequencies().tolist())) == expected
    seen = [[] for _ in lists]
    for lo, hi, note_of, ids in table.id_blocks(chunk_rows=50):
        for r, i in zip(note_of, ids):
            seen[lo + r].append(table.vocabulary[i])
    assert seen == lists
    assert isinstance(table._ids, np.memmap) and table._ids.dtype == np.int32
    with pytest.raises(IndexError):
        table[len(lists)]


def test_token_table_of_no_tokens(tmp_path):
    table = TokenTable.from_lists([[], []], tmp_path)
    assert len(table) == 2 and list(table) == [[], []] and table[0:2] == [[], []]


def test_a_million_rare_words_cost_their_bytes_not_python_objects(tmp_path):
    """A unique word per note (ids, markers): the vocabulary grows by the words' UTF-8 bytes and
    4-byte offsets, far below the ~150 bytes a Python string, dict entry and int take per word."""
    writer = TokenTableWriter(tmp_path)
    for lo in range(0, 1_000_000, 250_000):
        writer.append([["露营", f"n{i:07d}"] for i in range(lo, lo + 250_000)])
    table = writer.close()
    assert len(table.vocabulary) == 1_000_001
    assert table._words.nbytes < 16 * 1_000_001
    assert table[999_999] == ["露营", "n0999999"] and table[0] == ["露营", "n0000000"]
    assert table.document_frequencies()[0] == 1_000_000
