"""Property-based fuzzing of ingest (hypothesis): whatever the file, nothing is lost and nothing crashes.

Random CSV files of notes: encoding (UTF-8, UTF-8 with BOM, GB18030), quoting style, text with
commas, quotes, newlines, control characters, ANSI escapes and emoji, display counts (``1.2万``,
``10w+``, junk), dates in several formats (and junk), optional columns dropped (text-only files),
duplicate ids and ragged lines. For every file::

    rows_read == data records written == rows_accepted + rows_rejected + duplicates_resolved

and the stored table holds exactly the accepted rows, with no control characters left.
"""
from __future__ import annotations

import csv
import io
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from miner.config import MinerConfig
from miner.ingest import ingest_file, load_notes
from miner.schema import NOTES

FRAGMENTS = ["露营", "装备", "奶茶", "abc", " ", ",", '"', "'", "\n", "\r\n", "\t", "\x00", "\x07", "\x1b[31m",
             "\x1b[0m", "\u0085", "😂", "#话题#", "|", "１２３", "\u3000", "\ufeff", "；"]
COUNTS = ["0", "7", "3,456", "1.2万", "1.2w", "10w+", "10万+", "999+", "1.2k", "1.2亿", "１２３", "-1", "12.5",
          "一万", "", "n/a", "1e3"]
DATES = ["2023-09-01 10:00", "2023-09-01T02:00:00Z", "2023/9/1", "2023年9月1日", "1693533600",
         "1693533600000", "", "yesterday", "2023-13-45"]
OPTIONAL = ["note_id", "author_id", "published_at", "likes", "collects", "comments", "shares", "tags", "body"]
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

texts = st.lists(st.sampled_from(FRAGMENTS), max_size=6).map("".join)


@st.composite
def note_files(draw):
    columns = ["title"] + [c for c in OPTIONAL if draw(st.booleans())]
    n = draw(st.integers(0, 10))
    rows = []
    for _ in range(n):
        value = {"title": draw(texts), "body": draw(texts), "note_id": draw(st.sampled_from(["n1", "n2", "n3", ""])),
                 "author_id": draw(st.sampled_from(["a1", "a2", ""])), "published_at": draw(st.sampled_from(DATES)),
                 "tags": draw(texts)}
        value.update({c: draw(st.sampled_from(COUNTS)) for c in ("likes", "collects", "comments", "shares")})
        rows.append([value[c] for c in columns])
    ragged_at = draw(st.lists(st.integers(0, n), max_size=3))
    for k, at in enumerate(sorted(ragged_at, reverse=True)):
        width = draw(st.sampled_from([1, len(columns) + 1, len(columns) + 3])) if len(columns) > 1 else 2
        rows.insert(at, [f"rag{k}"] * width)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]))
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, quoting=quoting)
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding), len(rows), len(ragged_at)


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(note_files(), st.sampled_from([1, 3, 500_000]))
def test_ingest_accounts_for_every_row(file, chunk_rows):
    data, records, ragged = file
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "notes.csv"
        path.write_bytes(data)
        config = MinerConfig(workspace_dir=Path(tmp) / "ws")
        report = ingest_file(path, NOTES, config, mode="replace", chunk_rows=chunk_rows)
        assert report.rows_read == records
        assert report.rows_read == report.rows_accepted + report.rows_rejected + report.duplicates_resolved
        assert report.ragged_lines == ragged and report.rows_rejected >= ragged
        stored = load_notes(config)
        assert len(stored) == report.rows_accepted == report.table_rows
        for column in ("title", "body", "author_id"):
            assert not stored[column].dropna().map(lambda v: bool(_CONTROL.search(v))).any()
        assert not stored["tags"].map(lambda tags: any(_CONTROL.search(t) for t in tags)).any()
