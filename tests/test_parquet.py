"""Row-group parquet writing reads back exactly like ``to_parquet`` (real reviews, tokens included)."""
from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq

from miner.parquet import write_parquet


def _notes_with_tokens(review_notes, review_vectors):
    notes = review_notes.copy()
    tokens, _ = review_vectors
    # The first slice leaves these untyped: an all-missing category and empty token/tag lists.
    notes["tokens"] = [[] if i < 10 else t for i, t in enumerate(tokens)]
    notes["tags"] = [["#护肤#", "平替"] if i == 20 else [] for i in range(len(notes))]
    notes["category"] = notes["category"].where(notes.index >= 10, None)
    return notes


def test_row_groups_read_back_like_to_parquet(tmp_path, review_notes, review_vectors):
    notes = _notes_with_tokens(review_notes, review_vectors)
    write_parquet(notes, tmp_path / "groups.parquet", rows_per_group=10)
    notes.to_parquet(tmp_path / "whole.parquet", index=False)

    assert pq.ParquetFile(tmp_path / "groups.parquet").num_row_groups == -(-len(notes) // 10)
    grouped = pd.read_parquet(tmp_path / "groups.parquet")
    whole = pd.read_parquet(tmp_path / "whole.parquet")
    pd.testing.assert_frame_equal(grouped, whole)
    assert grouped["published_at"].dt.tz is not None
    assert list(grouped.loc[20, "tags"]) == ["#护肤#", "平替"]
    assert list(grouped.loc[100, "tokens"]) == list(notes.loc[100, "tokens"])


def test_slices_that_disagree_on_a_type_are_written_whole(tmp_path, review_notes):
    notes = review_notes.copy()
    notes["extra"] = pd.Series([1] * 100 + [2.5] * (len(notes) - 100), dtype=object)  # ints, then floats
    write_parquet(notes, tmp_path / "mixed.parquet", rows_per_group=50)
    back = pd.read_parquet(tmp_path / "mixed.parquet")
    assert back["extra"].tolist() == [1.0] * 100 + [2.5] * (len(notes) - 100)
    pd.testing.assert_frame_equal(back, pd.read_parquet(_whole(notes, tmp_path)))


def _whole(frame, tmp_path):
    frame.to_parquet(tmp_path / "whole.parquet", index=False)
    return tmp_path / "whole.parquet"


def test_a_column_kept_out_of_the_frame_reads_back_as_if_it_were_in_it(tmp_path, review_notes, review_vectors):
    """Token lists on disk (a TokenTable) written a row group at a time beside the frame: the file
    reads back like the frame with a tokens column, in one group or many."""
    import pyarrow as pa
    from miner.topics.tokens import TokenTable
    notes = _notes_with_tokens(review_notes, review_vectors)
    table = TokenTable.from_lists(notes["tokens"], tmp_path / "tokens")
    notes.to_parquet(tmp_path / "whole.parquet", index=False)
    whole = pd.read_parquet(tmp_path / "whole.parquet")
    for rows_per_group in (10, 10_000):
        path = tmp_path / f"extra-{rows_per_group}.parquet"
        write_parquet(notes.drop(columns="tokens"), path, rows_per_group=rows_per_group,
                      extra_columns={"tokens": (table, pa.list_(pa.string()))})
        back = pd.read_parquet(path)
        assert list(back.columns) == list(whole.columns)
        pd.testing.assert_frame_equal(back.drop(columns="tokens"), whole.drop(columns="tokens"))
        assert [list(t) for t in back["tokens"]] == [list(t) for t in whole["tokens"]]
