"""miner.ingest.parse: display counts ('1.2万', '10w+', full-width digits) and control characters."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from miner.config import MinerConfig
from miner.ingest import ingest_file, load_notes
from miner.ingest.parse import parse_number, strip_controls
from miner.schema import LIKES, NOTES


def _parse(values, allow_capped=True):
    out, missing, problems, capped = parse_number(pd.Series(values, dtype=object), NOTES.column(LIKES),
                                                  integer=True, allow_capped=allow_capped)
    return out.tolist(), capped.tolist(), problems


@pytest.mark.parametrize("shown, value, capped", [
    ("1.2万", 12_000, False),          # 1.2 × 10⁴
    ("1.25万", 12_500, False),
    ("1.2w", 12_000, False),
    ("10w+", 100_000, True),           # capped display: floor 10 × 10⁴
    ("10万+", 100_000, True),
    ("999+", 999, True),
    ("1.2k", 1_200, False),            # 1.2 × 10³
    ("1.5K", 1_500, False),
    ("3千", 3_000, False),
    ("1.2亿", 120_000_000, False),     # 1.2 × 10⁸
    ("3,456", 3_456, False),
    ("１２３", 123, False),             # full-width digits (NFKC)
    ("１．２万", 12_000, False),         # full-width point
    ("１０ｗ＋", 100_000, True),         # full-width w and plus
    (" 42 ", 42, False),
    ("0", 0, False),
])
def test_display_counts_hand_computed(shown, value, capped):
    values, caps, problems = _parse([shown])
    assert (values, caps, problems) == ([value], [capped], [])


def test_bad_counts_are_problems_not_guesses():
    values, caps, problems = _parse(["一万", "12.5", "-5", "1.2.3", "万"])
    assert [pd.isna(v) for v in values] == [True, True, False, True, True] and caps == [False] * 5
    reasons = " | ".join(" ".join(map(str, r if isinstance(r, np.ndarray) else [r])) for _, r in problems)
    assert "'一万' is not an integer" in reasons and "'12.5' is not an integer" in reasons
    assert "'-5' is a negative value" in reasons and "'1.2.3' is not an integer" in reasons


def test_capped_value_refused_where_the_table_has_no_flag():
    values, caps, problems = _parse(["10w+", "7"], allow_capped=False)
    assert pd.isna(values[0]) and values[1] == 7 and caps == [False, False]
    assert problems[0][0].tolist() == [True, False] and "approximate" in problems[0][1][0]


def test_capped_counts_stored_at_floor_with_flag(tmp_path):
    frame = pd.DataFrame({"title": ["a 露营", "b 露营", "c 露营"], "likes": ["10w+", "1.2万", "999+"],
                          "collects": ["1", "2", "3"], "comments": ["0", "0", "0"], "shares": ["0", "5", "0"],
                          "note_id": ["n1", "n2", "n3"]})
    frame.to_csv(tmp_path / "n.csv", index=False)
    config = MinerConfig(workspace_dir=tmp_path / "ws")
    report = ingest_file(tmp_path / "n.csv", NOTES, config)
    stored = load_notes(config).set_index("note_id")
    assert stored["likes"].tolist() == [100_000, 12_000, 999]
    assert stored["counts_capped"].tolist() == [True, False, True]
    assert report.capped_rows == 2 and "capped counts" in report.summary()


def test_strip_controls_counts_what_it_removed():
    s = pd.Series(["\x1b[31m红色\x1b[0m标题", "a\x00b\x07c", "行1\n行2\t列", "ok", None, "\x1b]0;title\x07x\u0085y"])
    cleaned, chars, cells = strip_controls(s)
    assert cleaned.fillna("NULL").tolist() == ["红色标题", "abc", "行1\n行2\t列", "ok", "NULL", "xy"]
    # ESC[31m (5) + ESC[0m (4); NUL + BEL; ESC]0;title BEL (10) + NEL (1)
    assert (chars, cells) == (5 + 4 + 2 + 10 + 1, 3)


def test_control_characters_stripped_at_ingest_and_reported(tmp_path):
    frame = pd.DataFrame({"note_id": ["n1", "n2"], "title": ["\x1b[31m露营\x1b[0m", "露营\x00装备"],
                          "body": ["正文\r\n第二行", "普通"], "category": ["户外\x1b[1m", "户外"]})
    frame.to_csv(tmp_path / "n.csv", index=False)
    config = MinerConfig(workspace_dir=tmp_path / "ws")
    report = ingest_file(tmp_path / "n.csv", NOTES, config)
    stored = load_notes(config).set_index("note_id")
    assert stored["title"].tolist() == ["露营", "露营装备"]
    assert stored.loc["n1", "body"] == "正文\n第二行"            # \r is a control character; \n stays
    assert stored.loc["n1", "category"] == "户外"
    # ESC[31m + ESC[0m = 9, NUL = 1, \r = 1, ESC[1m = 4
    assert (report.control_chars_removed, report.control_cells) == (15, 4)
    assert "control characters removed: 15 in 4 cells" in report.summary()
