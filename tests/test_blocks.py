"""Row-block helpers (miner.topics.blocks): the same values as the whole-array operations."""
import numpy as np


def test_blockwise_helpers_match_the_whole_array_versions(review_vectors):
    from miner.topics.blocks import mean_rows, normalize_rows_inplace, row_blocks
    from miner.topics.cluster import as_float32_normalized
    _, X = review_vectors
    X = X * np.linspace(0.5, 3, len(X), dtype=np.float32)[:, None]
    np.testing.assert_array_equal(normalize_rows_inplace(X.copy(), chunk_rows=7), as_float32_normalized(X))
    np.testing.assert_allclose(mean_rows(X, chunk_rows=7), X.astype(np.float64).mean(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(mean_rows(X), X.astype(np.float64).mean(axis=0))
    assert row_blocks(10, 4) == [(0, 4), (4, 8), (8, 10)] and row_blocks(0, 4) == []
