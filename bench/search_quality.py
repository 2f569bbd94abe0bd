"""Search and label quality on a mixed corpus of real labelled notes, with the real e5 model.

Corpus: a fixed-seed stratified sample of three shared labelled datasets, as notes —
online-shopping reviews (10 product categories × 100), NLPCC news headlines (18 classes × 50) and
Bilibili popular videos (title + start of the description, up to 60 per parent zone of the 14
largest zones); each note keeps its dataset label (``category`` = ``dataset:label``). Topics are
built in-process with :func:`miner.topics.pipeline.build_topics` (embeddings cached under
``bench/out/cache/embeddings``, so a re-run pays only for clustering and search).

Search (``bench/search/relevance.tsv``, ``bench/search/off_domain.txt``): a query's relevant topics
are those whose majority label is the query's expected label. ``recall_at_3`` = share of queries
with a relevant topic among the first 3 ideas; ``mrr`` = mean 1/rank of the first relevant idea
(k = 10, 0 when absent); queries whose label is the majority of no topic are reported and left
out. ``no_match_rate_off_domain`` = share of off-domain queries whose result has ``no_match``;
``no_match_rate_relevant`` = the same on the relevance set (false alarms).

Labels: mean NPMI (document co-occurrence over the corpus notes' tokens, top-10 keywords) and
diversity (unique share of all topics' top-10 words) of our topics, of the same topics labelled the
way ``main`` did (plain c-TF-IDF on the old dictionary: ``label_npmi_before``) and of BERTopic 0.17.4
(default UMAP + HDBSCAN, ``random_state`` seeds 42 and 43, on the same embeddings and tokens).

    python bench/search_quality.py               # ~5 min with a warm embedding cache
    python bench/search_quality.py --no-bertopic
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pandas as pd

from bench.common import BENCH_DIR, DATASETS_DIR, OUT_DIR, print_header, run_info

RESULTS_JSON = BENCH_DIR / "results" / "search_quality.json"
SEARCH_DIR = BENCH_DIR / "search"
BILI_ZONES = 14
SEED = 42


# ---- corpus ------------------------------------------------------------------------------------------
def corpus(seed: int = SEED) -> pd.DataFrame:
    """The labelled notes (notes schema + ``category``), fixed order."""
    rng = np.random.default_rng(seed)
    shop = pd.read_csv(DATASETS_DIR / "online-shopping-10cats" / "online_shopping_10_cats.csv")
    shop["text"] = shop["review"].fillna("").astype(str).str.replace("\ufeff", "", regex=False).str.strip()
    shop = shop[shop["text"].str.len() >= 6].drop_duplicates("text")
    shop = shop.groupby("cat", group_keys=False).sample(100, random_state=seed)
    news = pd.read_csv(DATASETS_DIR / "nlpcc2017-news-headlines" / "nlpcc2017_headlines_test_full.csv")
    news = news.groupby("label", group_keys=False).sample(50, random_state=seed)
    bili = pd.read_csv(DATASETS_DIR / "bilibili-popular" / "bilibili_popular_videos_latest.csv")
    zones = bili["main_zone"].value_counts().index[:BILI_ZONES]
    bili = bili[bili["main_zone"].isin(zones)]
    bili = bili.sample(frac=1.0, random_state=seed).groupby("main_zone").head(60).sort_index()
    desc = bili["desc"].fillna("").astype(str).str.strip().replace("-", "").str[:80]
    parts = [
        pd.DataFrame({"title": shop["text"].str[:150], "body": "", "tags": [[] for _ in range(len(shop))],
                      "category": "online-shopping:" + shop["cat"].astype(str)}),
        pd.DataFrame({"title": news["text"].astype(str), "body": "", "tags": [[] for _ in range(len(news))],
                      "category": "nlpcc:" + news["label"].astype(str)}),
        pd.DataFrame({"title": bili["title"].astype(str), "body": desc,
                      "tags": [[t for t in str(h).split("|") if t] if isinstance(h, str) else [] for h in bili["hashtags"]],
                      "category": "bilibili:" + bili["main_zone"].astype(str)}),
    ]
    notes = pd.concat(parts, ignore_index=True)
    n = len(notes)
    notes.insert(0, "note_id", [f"q{i:05d}" for i in range(n)])
    notes["author_id"] = "a"
    notes["published_at"] = (pd.Timestamp("2023-09-01", tz="Asia/Shanghai")
                             + pd.to_timedelta(rng.integers(0, 60 * 24, n), "min") * 30)
    for col in ("likes", "collects", "comments", "shares"):
        notes[col] = rng.integers(0, 200, n)
    return notes


def bench_config(models_dir: Path):
    from miner.config import MinerConfig
    return MinerConfig(models_dir=models_dir, workspace_dir=models_dir / "ws")


def build(notes: pd.DataFrame, embedder, models_dir: Path):
    """Build topics in-process into ``models_dir`` (embeddings cached in bench/out/cache)."""
    from miner.topics.pipeline import build_topics
    from miner.topics.snapshot import load_snapshot
    config = bench_config(models_dir)
    result = build_topics(config, notes, embedder=embedder, show_progress=False)
    return config, load_snapshot(config, result.run_id), result


# ---- search ------------------------------------------------------------------------------------------
def read_relevance() -> pd.DataFrame:
    rel = pd.read_csv(SEARCH_DIR / "relevance.tsv", sep="\t", dtype=str, keep_default_na=False)
    rel["expected"] = rel["expected"].str.split("|")
    return rel


def read_off_domain() -> list[str]:
    lines = (SEARCH_DIR / "off_domain.txt").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("# ")]


def majority_labels(snapshot) -> dict[int, str]:
    """topic_id → the dataset label most of its notes carry."""
    inliers = snapshot.notes.merge(snapshot.assignments, on="note_id").query("topic_id >= 0")
    return inliers.groupby("topic_id")["category"].agg(lambda s: s.value_counts().idxmax()).to_dict()


def evaluate_search(searcher, snapshot, k: int = 10) -> dict:
    majority = majority_labels(snapshot)
    covered = set(majority.values())
    rows, skipped = [], []
    for query, expected, kind in read_relevance()[["query", "expected", "kind"]].itertuples(index=False):
        if not covered & set(expected):
            skipped.append(query)
            continue
        result = searcher.search(query, k=k)
        ranks = [i for i, idea in enumerate(result.ideas, 1) if majority.get(idea.topic_id) in expected]
        first = ranks[0] if ranks else None
        rows.append({"query": query, "kind": kind, "expected": "|".join(expected), "rank": first,
                     "no_match": result.no_match, "top": f"{result.ideas[0].label} ({majority.get(result.ideas[0].topic_id)})",
                     "top_match": result.ideas[0].match, "top_z": round(result.ideas[0].relevance, 2),
                     "top_cos": round(result.ideas[0].semantic_score, 3)})
    off = []
    for query in read_off_domain():
        result = searcher.search(query, k=k)
        top = result.ideas[0] if result.ideas else None
        off.append({"query": query, "no_match": result.no_match, "empty_query": result.empty_query,
                    "top": f"{top.label} ({majority.get(top.topic_id)})" if top else "",
                    "top_z": round(top.relevance, 2) if top else None,
                    "top_cos": round(top.semantic_score, 3) if top else None})
    ranks = [r["rank"] for r in rows]
    return {
        "recall_at_3": float(np.mean([r is not None and r <= 3 for r in ranks])),
        "mrr": float(np.mean([1.0 / r if r else 0.0 for r in ranks])),
        "no_match_rate_off_domain": float(np.mean([o["no_match"] for o in off])),
        "no_match_rate_relevant": float(np.mean([r["no_match"] for r in rows])),
        "n_queries": len(rows), "n_off_domain": len(off), "unanswerable_queries": skipped,
        "per_query": rows, "per_off_domain_query": off,
    }


# ---- labels --------------------------------------------------------------------------------------------
def npmi_and_diversity(top_words: list[list[str]], token_lists) -> tuple[float, float, list[float]]:
    """Mean NPMI of each topic's top-10 words over the notes, diversity, per-topic NPMI."""
    from miner.topics.label import doc_term_matrix, npmi_coherence
    vocabulary = sorted({w for words in top_words for w in words})
    vocab = set(vocabulary)
    docs = [list(t) + [a + b for a, b in zip(t, t[1:]) if a + b in vocab] for t in token_lists]
    doc_terms = doc_term_matrix(docs, vocabulary)
    index = {t: i for i, t in enumerate(vocabulary)}
    per_topic = [npmi_coherence(list(words)[:10], doc_terms, index) for words in top_words]
    all_words = [w for words in top_words for w in list(words)[:10]]
    diversity = len(set(all_words)) / max(len(all_words), 1)
    return float(np.mean(per_topic)), float(diversity), per_topic


def labels_before(snapshot, texts) -> tuple[list[list[str]], list[list[str]]]:
    """Top-10 words as ``main`` labelled these topics: plain c-TF-IDF on main's dictionary, no whitelist."""
    from miner.topics.label import ClassTfidf
    from miner.topics.segment import JiebaSegmenter
    old = subprocess.run(["git", "show", "main:data/dicts/xhs_user_dict.txt"], capture_output=True, text=True,
                         cwd=BENCH_DIR.parent, check=True).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as fh:
        fh.write(old)
    tokens = JiebaSegmenter(lexicon_paths=(fh.name,), single_chars=()).segment_many(texts)
    Path(fh.name).unlink()
    topic_of = snapshot.assignments.set_index("note_id")["topic_id"]
    labels = snapshot.notes["note_id"].map(topic_of).to_numpy()
    ctf = ClassTfidf(min_df=2).fit(tokens, labels)
    return [[w for w, _ in ctf.top_terms(t, 10)] for t in sorted(snapshot.topics["topic_id"])], tokens


def run_bertopic(texts, embeddings, seed: int):
    from bench.quality import bertopic_model, jieba_vectorizer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = bertopic_model(seed, jieba_vectorizer())
        topics, _ = model.fit_transform(list(texts), embeddings=embeddings)
    words = [[w for w, _ in model.get_topic(t)][:10] for t in sorted(set(topics)) if t != -1]
    return [w for w in words if w], int(len(words)), float(np.mean(np.asarray(topics) == -1))


def label_scores(snapshot, bertopic_seeds: list[int]) -> dict:
    """NPMI / diversity of our labels, main's c-TF-IDF labels and BERTopic's on one snapshot's corpus."""
    from miner.topics.pipeline import notes_texts
    topics = snapshot.topics.sort_values("topic_id")
    tokens = [list(t) for t in snapshot.notes["tokens"]]
    ours_npmi, ours_div, _ = npmi_and_diversity([list(k) for k in topics["keywords"]], tokens)
    texts = notes_texts(snapshot.notes)
    before_words, before_tokens = labels_before(snapshot, texts)
    before_npmi, before_div, _ = npmi_and_diversity(before_words, before_tokens)
    out = {"label_npmi": round(ours_npmi, 4), "label_diversity": round(ours_div, 4),
           "label_npmi_before": round(before_npmi, 4), "label_diversity_before": round(before_div, 4),
           "n_topics": int(len(topics)), "mixed_topics": int(topics["is_mixed"].sum())}
    runs = []
    for seed in bertopic_seeds:
        words, n_topics, outliers = run_bertopic(texts, np.asarray(snapshot.embeddings), seed)
        npmi, div, _ = npmi_and_diversity(words, tokens)
        runs.append({"seed": seed, "npmi": round(npmi, 4), "diversity": round(div, 4),
                     "n_topics": n_topics, "outliers": round(outliers, 4)})
        print(f"  BERTopic seed {seed}: {n_topics} topics, outliers {outliers:.1%}, NPMI {npmi:.3f}, diversity {div:.3f}")
    if runs:
        out["bertopic_label_npmi"] = round(float(np.mean([r["npmi"] for r in runs])), 4)
        out["bertopic_label_diversity"] = round(float(np.mean([r["diversity"] for r in runs])), 4)
        out["bertopic_runs"] = runs
    return out


def per_dataset_labels(notes: pd.DataFrame, embedder, seeds: list[int]) -> dict:
    """Label scores with topics built on each dataset's part of the corpus alone (same embeddings)."""
    out = {}
    for name in ("nlpcc", "online-shopping", "bilibili"):
        part = notes[notes["category"].str.startswith(name + ":")].reset_index(drop=True)
        _, snapshot, _ = build(part, embedder, fresh_models_dir(f"by-dataset-{name}"))
        out[name] = label_scores(snapshot, seeds)
        print(f"{name}: NPMI {out[name]['label_npmi']:.3f} (main's {out[name]['label_npmi_before']:.3f}, "
              f"BERTopic {out[name].get('bertopic_label_npmi', float('nan')):.3f}), diversity "
              f"{out[name]['label_diversity']:.3f}, 混合话题 {out[name]['mixed_topics']} of {out[name]['n_topics']}")
    return out


def fresh_models_dir(name: str) -> Path:
    """An empty bench/out/search_quality/<name> whose embedding cache is the shared bench cache."""
    models_dir = OUT_DIR / "search_quality" / name
    shutil.rmtree(models_dir, ignore_errors=True)
    (models_dir / "cache").mkdir(parents=True)
    (OUT_DIR / "cache" / "embeddings").mkdir(parents=True, exist_ok=True)
    (models_dir / "cache" / "embeddings").symlink_to((OUT_DIR / "cache" / "embeddings").resolve())
    return models_dir


# ---- main ----------------------------------------------------------------------------------------------
def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-bertopic", action="store_true")
    parser.add_argument("--bertopic-seeds", default="42,43")
    parser.add_argument("--no-per-dataset", action="store_true", help="skip the per-dataset label scores")
    args = parser.parse_args(argv)
    info = run_info(argv)
    print_header("Search and label quality (bench/search_quality.py)", info)
    from bench.common import get_bench_embedder
    from miner.insights.search import TopicSearcher
    from miner.topics.segment import make_segmenter

    started = time.perf_counter()
    notes = corpus()
    embedder = get_bench_embedder()
    config, snapshot, built = build(notes, embedder, fresh_models_dir("mixed"))
    print(built.summary())
    searcher = TopicSearcher(embedder=embedder, segmenter=make_segmenter(config)).fit(snapshot)
    search = evaluate_search(searcher, snapshot)
    print(f"search: recall@3 {search['recall_at_3']:.3f}, MRR {search['mrr']:.3f}, off-domain no-match "
          f"{search['no_match_rate_off_domain']:.3f}, relevant no-match {search['no_match_rate_relevant']:.3f} "
          f"({search['n_queries']} queries, {search['n_off_domain']} off-domain; unanswerable: "
          f"{search['unanswerable_queries']})")

    seeds = [] if args.no_bertopic else [int(x) for x in args.bertopic_seeds.split(",") if x]
    labels = label_scores(snapshot, seeds)
    out = {
        "recall_at_3": round(search["recall_at_3"], 4), "mrr": round(search["mrr"], 4),
        "no_match_rate_off_domain": round(search["no_match_rate_off_domain"], 4),
        "no_match_rate_relevant": round(search["no_match_rate_relevant"], 4),
        **labels, "n_notes": int(len(notes)),
    }
    print(f"labels: NPMI {labels['label_npmi']:.3f} (main's c-TF-IDF labels {labels['label_npmi_before']:.3f}, "
          f"BERTopic {labels.get('bertopic_label_npmi', float('nan')):.3f}), diversity {labels['label_diversity']:.3f}; "
          f"混合话题 {labels['mixed_topics']} of {labels['n_topics']}")
    if not args.no_per_dataset:
        out["label_npmi_by_dataset"] = per_dataset_labels(notes, embedder, seeds[:1])
    topics = snapshot.topics.sort_values("topic_id")
    out["topics"] = [{"topic_id": int(t), "label": lab, "majority": majority_labels(snapshot).get(int(t)),
                      "coherence": float(c), "is_mixed": bool(m), "keywords": list(k)}
                     for t, lab, c, m, k in topics[["topic_id", "label", "coherence", "is_mixed", "keywords"]]
                     .itertuples(index=False)]
    out["search"] = search
    out["seconds"] = round(time.perf_counter() - started, 1)
    out["run"] = info
    from miner.atomic import write_text_atomic
    RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(RESULTS_JSON, json.dumps(out, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {RESULTS_JSON} in {out['seconds']:.0f}s")
    return out


if __name__ == "__main__":
    if "--embed-only" in sys.argv:      # warm the embedding cache only
        from miner.topics.pipeline import notes_texts
        from bench.common import embed_texts
        embed_texts(notes_texts(corpus().sort_values("note_id")), show_progress=False)
    else:
        main()
