import numpy as np
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
    # words come back as the vocabulary's own objects: reading never copies a word
    vocab = {w: w for w in table.vocabulary}
    assert all(w is vocab[w] for t in table[:20] for w in t)
    assert isinstance(table._ids, np.memmap) and table._ids.dtype == np.int32
    with pytest.raises(IndexError):
        table[len(lists)]


def test_token_table_of_no_tokens(tmp_path):
    table = TokenTable.from_lists([[], []], tmp_path)
    assert len(table) == 2 and list(table) == [[], []] and table[0:2] == [[], []]
