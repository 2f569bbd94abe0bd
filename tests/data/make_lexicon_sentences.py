"""Rebuild ``lexicon_sentences.tsv``: one real sentence per field word, for tests/test_lexicon.py.

Field words: every platform word of ``data/dicts/xhs_user_dict.txt`` and a fixed-seed sample of 150
``thuocl_lexicon.txt`` words. For each, the first clause (split at punctuation, 4–60 characters)
that contains it, in a fixed order of real corpora from /work/shared/datasets (Bilibili titles,
descriptions and uploader posts; shop reviews; news headlines; Zhihu questions). The sentence is
taken as found, whether or not the segmenter keeps the word (the test counts how many survive).

    python tests/data/make_lexicon_sentences.py
"""
from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
D = Path("/work/shared/datasets")
CLAUSE = re.compile(r"[。！？!?；;，,\n\r|【】\[\]「」《》()（）#]+")


def clauses():
    bili = pd.read_csv(D / "bilibili-popular" / "bilibili_popular_videos_latest.csv")
    sources = [("bilibili", bili["title"]), ("bilibili", bili["desc"]), ("bilibili", bili["dynamic"]),
               ("online-shopping", pd.read_csv(D / "online-shopping-10cats" / "online_shopping_10_cats.csv")["review"]),
               ("nlpcc", pd.read_csv(D / "nlpcc2017-news-headlines" / "nlpcc2017_headlines_test_full.csv")["text"]),
               ("zhihu", pd.read_parquet(D / "zhihu-hot-questions" / "zhihu_daily.parquet")["title"].drop_duplicates())]
    for name, col in sources:
        for text in col.dropna().astype(str):
            for c in CLAUSE.split(text):
                c = c.strip()
                if 4 <= len(c) <= 60:
                    yield name, c


def main() -> None:
    from miner.topics.segment import DEFAULT_USER_DICT, THUOCL_LEXICON, JiebaSegmenter, read_word_list
    stop = JiebaSegmenter().stopwords      # filler such as yyds / 绝绝子 is meant to be dropped
    platform = []
    for entry in read_word_list(DEFAULT_USER_DICT):
        parts = entry.split()
        while len(parts) > 1 and (parts[-1].isdigit() or parts[-1].isalpha() and parts[-1].islower() and len(parts[-1]) <= 2):
            parts = parts[:-1]                          # trailing "freq" and "pos"
        word = "".join(parts)
        if word.lower() not in stop and not word.isdigit():
            platform.append(word)
    platform = list(dict.fromkeys(platform))
    thuocl = [e.split()[0] for e in read_word_list(THUOCL_LEXICON)]
    sample = list(np.random.default_rng(0).choice(thuocl, 600, replace=False))
    wanted = {w.lower(): ("platform", w) for w in platform}
    for w in sample:
        wanted.setdefault(w, ("thuocl", w))
    found: dict[str, tuple] = {}
    n_thuocl = 0
    for source, clause in clauses():
        low = clause.lower()
        for key, (kind, word) in wanted.items():
            if key in found or key not in low:
                continue
            if kind == "thuocl" and n_thuocl >= 150:
                continue
            found[key] = (word, kind, source, clause)
            n_thuocl += kind == "thuocl"
    rows = sorted(found.values(), key=lambda r: (r[1], r[0]))
    with open(HERE / "lexicon_sentences.tsv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["word", "lexicon", "source", "sentence"])
        w.writerows(rows)
    print(f"{len(rows)} words ({sum(r[1] == 'platform' for r in rows)} platform)")


if __name__ == "__main__":
    main()
