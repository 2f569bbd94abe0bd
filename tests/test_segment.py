import pytest

from miner.topics.segment import JiebaSegmenter, count_emoji, extract_hashtags, note_text, strip_emoji


@pytest.fixture(scope="module")
def seg():
    return JiebaSegmenter()


def test_xhs_hashtags_are_whole_tokens_and_removed_from_text():
    tags, rest = extract_hashtags("周末去哪 #露营[话题]# #多巴胺穿搭# 看这里")
    assert tags == ["露营", "多巴胺穿搭"]
    assert "#" not in rest and "露营" not in rest


def test_slang_from_user_dictionary_stays_one_token(seg):
    tokens = seg.segment("大牌平替，早C晚A坚持一个月，周末city walk打卡")
    assert "大牌平替" in tokens
    assert "早c晚a" in tokens
    assert "citywalk" in tokens


def test_multiword_dictionary_phrase_is_joined(seg):
    assert "citywalk" in seg.segment("上海 City Walk 路线")


def test_platform_filler_is_dropped(seg):
    tokens = seg.segment("姐妹们真的绝绝子，强烈推荐这款洗发水，好用！")
    assert "洗发水" in tokens
    for filler in ("姐妹们", "真的", "绝绝子", "推荐", "好用"):
        assert filler not in tokens


def test_emoji_stripped_and_emoji_only_note_gives_no_tokens(seg):
    assert count_emoji("好看😍😍[笑哭R]") == 3
    assert "😍" not in strip_emoji("好看😍")
    assert seg.segment("😍🥰✨") == []


def test_full_width_and_traditional_are_normalised(seg):
    tokens = seg.segment("資生堂洗髮水ＡＢＣ")
    assert "洗发水" in tokens
    assert any(t.startswith("abc") for t in tokens)


def test_user_dictionary_and_stopwords_are_extendable(tmp_path):
    d = tmp_path / "brands.txt"
    d.write_text("蕉下防晒衣 500 n\n", encoding="utf-8")
    base = JiebaSegmenter().segment("蕉下防晒衣真的好")
    custom = JiebaSegmenter(user_dict_paths=[d], extra_stopwords=["防晒"]).segment("蕉下防晒衣真的好")
    assert "蕉下防晒衣" not in base
    assert "蕉下防晒衣" in custom


def test_missing_user_dictionary_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        JiebaSegmenter(user_dict_paths=[tmp_path / "nope.txt"]).segment("测试")


def test_parallel_segmentation_matches_serial(reviews_4cats, monkeypatch):
    import miner.topics.segment as segment
    monkeypatch.setattr(segment, "PARALLEL_MIN_TEXTS", 1000)   # 2400 texts: the parallel path
    monkeypatch.setattr(segment, "PARALLEL_CHUNK", 500)        # several tasks, order must be kept
    monkeypatch.setattr(segment.threading, "active_count", lambda: 1)   # as in the CLI process
    texts = reviews_4cats["review"].tolist() * 10
    serial = JiebaSegmenter(n_jobs=1).segment_many(texts)
    parallel = JiebaSegmenter(n_jobs=2).segment_many(texts)
    assert parallel == serial
    # Each distinct word is one object, also after crossing the worker-process boundary: the
    # corpus's token lists do not hold a copy of the vocabulary per note.
    for tokens in (serial, parallel):
        words = [w for ts in tokens for w in ts]
        assert len(words) > 10 * len(set(words))
        assert len({id(w) for w in words}) == len(set(words))


def test_no_worker_processes_while_other_threads_run(reviews_4cats, monkeypatch):
    import threading
    import miner.topics.segment as segment

    def no_pool(*args, **kwargs):
        raise AssertionError("forked a pool while another thread was running")
    monkeypatch.setattr(segment, "PARALLEL_MIN_TEXTS", 100)
    monkeypatch.setattr(segment, "ProcessPoolExecutor", no_pool)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)          # e.g. Streamlit's server threads
    other.start()
    try:
        texts = reviews_4cats["review"].tolist()
        serial = JiebaSegmenter(n_jobs=1)
        assert JiebaSegmenter(n_jobs=2).segment_many(texts) == [serial.segment(t) for t in texts]
    finally:
        stop.set()
        other.join()


def test_note_text_joins_title_body_and_tags():
    text = note_text("露营装备", "平价好物", "露营|户外")
    assert text == "露营装备\n平价好物\n#露营# #户外#"


def test_make_segmenter_uses_the_workspace_dictionaries_and_stopwords(tmp_path):
    from miner.config import MinerConfig
    from miner.topics.segment import make_segmenter
    words = tmp_path / "brands.txt"
    words.write_text("蕉下防晒衣\n", encoding="utf-8")
    stop = tmp_path / "stop.txt"
    stop.write_text("# 本店的口头禅\n宝藏\n", encoding="utf-8")
    config = MinerConfig(user_dict_paths=(str(words),), extra_stopword_paths=(str(stop),))
    tokens = make_segmenter(config).segment("宝藏蕉下防晒衣")
    assert tokens == ["蕉下防晒衣"]
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        make_segmenter(MinerConfig(extra_stopword_paths=(str(tmp_path / "missing.txt"),)))


def test_segmenters_with_the_same_dictionaries_share_one_load_and_an_edited_one_reloads(tmp_path):
    words = tmp_path / "brands.txt"
    words.write_text("蕉下防晒衣\n", encoding="utf-8")
    first, second = JiebaSegmenter(user_dict_paths=[words]), JiebaSegmenter(user_dict_paths=[words])
    assert first.segment("蕉下防晒衣") == second.segment("蕉下防晒衣") == ["蕉下防晒衣"]
    assert first._tokenizer is second._tokenizer              # jieba's dictionary loaded once
    assert JiebaSegmenter().segment("蕉下防晒衣") != ["蕉下防晒衣"]   # no leak into other dictionaries
    words.write_text("蕉下防晒衣\n小熊饼干杯\n", encoding="utf-8")
    edited = JiebaSegmenter(user_dict_paths=[words])
    assert edited.segment("小熊饼干杯") == ["小熊饼干杯"]
    assert edited._tokenizer is not first._tokenizer
    assert first.segment("小熊饼干杯") != ["小熊饼干杯"]        # a loaded segmenter keeps what it loaded


def test_segmenter_params_round_trip_through_clone():
    from sklearn.base import clone
    seg = JiebaSegmenter(extra_stopwords=("露营",), single_chars=("猫",))
    assert seg.segment("露营的猫和狗") == ["猫"]
    copy = clone(seg)
    assert copy.get_params() == seg.get_params() and copy.segment("露营的猫和狗") == ["猫"]
    copy.set_params(single_chars=("狗",))                  # reloads on the next call
    assert copy.segment("露营的猫和狗") == ["狗"]
    with pytest.raises(ValueError, match="unknown"):
        copy.set_params(colour="red")


def test_dictionary_from_the_disk_cache_segments_exactly_like_a_fresh_load(reviews_4cats, tmp_path, monkeypatch):
    from miner.topics import segment
    monkeypatch.setenv("MINER_JIEBA_CACHE", str(tmp_path / "cache"))
    user = tmp_path / "brand.txt"
    user.write_text("小棕瓶 50 n\nCity Walk\n", encoding="utf-8")
    texts = reviews_4cats["review"].tolist() + ["上海 City Walk 路线，小棕瓶平替", "早C晚A #露营[话题]#"]

    monkeypatch.setattr(segment, "_DICTIONARIES", {})
    fresh = JiebaSegmenter(user_dict_paths=[user])
    expected = [fresh.segment(t) for t in texts]
    entries = list((tmp_path / "cache").iterdir())
    assert len(entries) == 1 and (entries[0] / "freq.npy").is_file()    # the fresh load stored it

    monkeypatch.setattr(segment, "_DICTIONARIES", {})
    calls = []
    monkeypatch.setattr(segment, "_load_user_dict", lambda *a: calls.append(a))
    cached = JiebaSegmenter(user_dict_paths=[user])
    assert [cached.segment(t) for t in texts] == expected
    assert calls == []                                                     # nothing re-read from the lexicons
    assert cached._tokenizer.FREQ == fresh._tokenizer.FREQ and cached._tokenizer.total == fresh._tokenizer.total
    assert "小棕瓶" in cached.segment("小棕瓶平替")

    user.write_text("小棕瓶 50 n\n小金瓶\n", encoding="utf-8")              # an edited lexicon: a new entry
    monkeypatch.setattr(segment, "_DICTIONARIES", {})
    JiebaSegmenter(user_dict_paths=[user]).segment("小金瓶")
    assert len(list((tmp_path / "cache").iterdir())) == 2


def test_an_unreadable_dictionary_cache_entry_falls_back_to_a_fresh_load(tmp_path, monkeypatch):
    from miner.topics import jieba_cache, segment
    monkeypatch.setenv("MINER_JIEBA_CACHE", str(tmp_path))
    monkeypatch.setattr(segment, "_DICTIONARIES", {})
    assert "洗发水" in JiebaSegmenter().segment("这款洗发水很好")        # stores the entry
    (entry,) = tmp_path.iterdir()
    (entry / "info.json").write_text("{not json", encoding="utf-8")
    assert jieba_cache.load(entry.name.removeprefix("jieba-")) is None
    monkeypatch.setattr(segment, "_DICTIONARIES", {})
    assert "洗发水" in JiebaSegmenter().segment("这款洗发水很好")
