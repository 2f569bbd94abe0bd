"""The bundled lexicons keep field words whole in real sentences (tests/data/lexicon_sentences.tsv)."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from miner.topics.segment import (DEFAULT_LEXICONS, JiebaSegmenter, default_single_chars, read_word_list)

SENTENCES = Path(__file__).parent / "data" / "lexicon_sentences.tsv"


@pytest.fixture(scope="module")
def seg() -> JiebaSegmenter:
    return JiebaSegmenter()


@pytest.fixture(scope="module")
def field_sentences() -> list[dict]:
    with open(SENTENCES, encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _intact(segmenter, rows) -> list[str]:
    return [r["word"] for r in rows if r["word"].lower() in segmenter.segment(r["sentence"])]


def test_at_least_200_field_words_survive_in_real_sentences(seg, field_sentences):
    kept = _intact(seg, field_sentences)
    assert len(field_sentences) >= 400
    assert len(kept) >= 200
    assert len(kept) / len(field_sentences) >= 0.9          # measured 0.95 (the rest sit inside longer words)
    platform = [r for r in field_sentences if r["lexicon"] == "platform"]
    assert len(_intact(seg, platform)) >= 0.9 * len(platform)


def test_lexicons_are_what_keeps_them(seg, field_sentences):
    plain = JiebaSegmenter(lexicon_paths=(), single_chars=())
    assert len(_intact(plain, field_sentences)) < 0.7 * len(_intact(seg, field_sentences))


@pytest.mark.parametrize("text, word", [
    ("夏季露营穿搭分享", "穿搭"), ("干皮冬天的护肤步骤", "护肤"), ("大牌口红的平替", "平替"),
    ("早C晚A一个月的变化", "早c晚a"), ("今日OOTD", "ootd"), ("周末去探店", "探店"),
    ("通勤显瘦的裤子", "显瘦"), ("氛围感拉满的卧室", "氛围感"), ("上海citywalk路线", "citywalk"),
    ("找个饭搭子", "饭搭子"), ("毛肚火锅真香", "毛肚火锅"), ("今年618买什么", "618"),
])
def test_platform_words_in_context(seg, text, word):
    assert word in seg.segment(text)


def test_single_characters_that_carry_a_topic_are_kept(seg):
    tokens = seg.segment("家里的猫和狗，一杯茶，一双鞋")
    assert {"猫", "狗", "茶", "鞋"} <= set(tokens)
    assert "和" not in tokens and "杯" not in tokens           # other single characters still go
    assert JiebaSegmenter(single_chars=()).segment("猫和狗") == []
    assert JiebaSegmenter(single_chars=["猫"]).segment("猫和狗") == ["猫"]


def test_bundled_files_are_well_formed(seg):
    for path in DEFAULT_LEXICONS:
        entries = read_word_list(path)
        assert len(entries) > 300, path
        words = [e.split()[0] for e in entries]
        assert len(set(words)) == len(words), f"{path}: duplicate entries"
    chars = default_single_chars()
    assert {"猫", "狗", "茶", "鞋", "包", "裙", "酒", "车", "书", "药"} <= chars
    assert all(len(c) == 1 for c in chars)
    stop = seg.stopwords
    assert not chars & stop, "a whitelisted character is also a stopword"
