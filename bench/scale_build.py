"""Build memory and time by stage as the corpus grows (issue #12, points 5 and 6).

Each size runs in its own process: ``build_topics`` (the real build: segmentation, embedding
through the cache, clustering, labelling, note index, snapshot and registry writes), with the
wall time and the peak memory of every stage read from the progress callback's stage changes.
The notes reach it as :meth:`Workspace.build` hands them over: an Arrow file memory-mapped by
:func:`miner.ingest.notes_file.open_notes_file`, written beforehand by another process (with the
cache shard), so preparing the data never counts in the build's memory.

What is real and what is synthetic (stated in the JSON too):

* texts: the demo corpus (``data/demo/notes.parquet``, 5,000 real notes) replicated to n notes,
  each title given a unique ``n0000123`` marker (unique texts, so no cache de-duplication; a token
  in one note only, which c-TF-IDF's ``min_df=2`` drops) and its publish time jittered ±20 days;
* vectors: the demo notes' real e5 int8 embeddings (read from the shared embedding cache), each
  copy plus N(0, 0.01²) noise per dimension, re-normalised (cosine ≈ 0.98 to its source; as
  ``bench/speed.py``). They are stored in the build's empty embedding cache as one shard before
  the build, so the build's embedding stage is a cache read; embedding cost itself is projected
  from ``bench/results/embed_speed.json`` (never invented here).

Memory, read from ``/proc/self/status``: ``VmHWM`` reset at each stage start (exact peak of the
whole resident set, mapped file pages included) and ``RssAnon`` sampled every 20 ms (private
memory, i.e. beside the memory-mapped embeddings). A clustering-only run at the largest size with
``max_train_size=None`` (every note in memory, the previous behaviour) gives the comparison.

Run: ``flock /work/bench.lock python bench/scale_build.py`` (→ ``bench/results/scale_build.json``
and a section of ``bench/RESULTS.md``).
"""
from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO_ROOT, load_average, run_info  # noqa: E402

RESULTS = REPO_ROOT / "bench" / "results" / "scale_build.json"
RESULTS_MD = REPO_ROOT / "bench" / "RESULTS.md"
EMBED_SPEED = REPO_ROOT / "bench" / "results" / "embed_speed.json"
SHARED_CACHE = REPO_ROOT / "models" / "cache" / "embeddings"
DEMO_NOTES = REPO_ROOT / "data" / "demo" / "notes.parquet"
NOISE = 0.01
MARKER = re.compile(r"n(\d{7,})")
GB = 1024 ** 3
STAGES = {"分词 segmenting": "segmenting", "向量化 embedding": "embedding", "聚类 clustering": "clustering",
          "标注 labelling": "labelling", "索引 indexing": "indexing", "写入 writing": "writing",
          "完成 done": "done"}


# ---- memory probes ---------------------------------------------------------------------------------
def _status() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem"):
            out[key] = int(value.split()[0]) * 1024
    return out


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")      # resets VmHWM (Linux ≥ 4.0)
        return True
    except OSError:
        return False


class StageMeter:
    """Per-stage wall time, exact resident peak (VmHWM) and sampled private (anon) peak."""

    def __init__(self, interval: float = 0.02):
        self.interval, self.stage, self.rows = interval, None, {}
        self._anon_peak, self._started, self._anon_start = 0, 0.0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._anon_peak = max(self._anon_peak, _status()["RssAnon"])

    def switch(self, stage: str | None) -> None:
        if stage == self.stage:
            return
        now, status = time.perf_counter(), _status()
        if self.stage is not None:
            self.rows[self.stage] = {
                "seconds": round(now - self._started, 2),
                "peak_rss_gb": round(status["VmHWM"] / GB, 3),
                "peak_anon_gb": round(max(self._anon_peak, status["RssAnon"]) / GB, 3),
                "anon_at_start_gb": round(self._anon_start / GB, 3),
            }
        self.stage, self._started = stage, now
        _reset_peak()
        status = _status()
        self._anon_peak = self._anon_start = status["RssAnon"]

    def close(self) -> None:
        self.switch(None)
        self._stop.set()


# ---- synthetic corpus --------------------------------------------------------------------------------
def demo_source():
    """(demo notes with a cached real e5 int8 vector, their vectors, model id)."""
    import pandas as pd
    from miner.config import MinerConfig
    from miner.topics.embed import EmbeddingCache, get_embedder, text_key
    from miner.topics.pipeline import notes_texts
    model_id = get_embedder(MinerConfig()).model_id        # no model load: the id only
    notes = pd.read_parquet(DEMO_NOTES)
    keys = {text_key(t): i for i, t in enumerate(notes_texts(notes))}
    vectors = np.zeros((len(notes), 384), np.float32)
    filled = EmbeddingCache(SHARED_CACHE).fill(model_id, "passage", keys, lambda dim: vectors)
    rows = np.flatnonzero(filled)
    if len(rows) < 0.9 * len(notes):
        raise SystemExit(f"only {len(rows)} of {len(notes)} demo notes have cached {model_id} vectors in "
                         f"{SHARED_CACHE}; build the demo once (python -m miner build) first")
    return notes.iloc[rows].reset_index(drop=True), vectors[rows], model_id


def synthetic_chunks(n: int, seed: int = 0, rows: int = 100_000):
    """(notes, vectors) of the synthetic corpus, ``rows`` notes at a time (see the module);
    yields ``(start, notes chunk, vectors chunk, model id, source notes)``."""
    import pandas as pd
    from miner import schema
    notes, base, model_id = demo_source()
    rng = np.random.default_rng(seed)
    m = len(notes)
    source = np.arange(n) % m
    jitter_s = np.where(np.arange(n) < m, 0, rng.integers(-20 * 86400, 20 * 86400, n))
    for lo in range(0, n, rows):
        hi = min(n, lo + rows)
        out = notes.iloc[source[lo:hi]].reset_index(drop=True)
        out[schema.NOTE_ID] = [f"s{i:08d}" for i in range(lo, hi)]
        out[schema.TITLE] = out[schema.TITLE].fillna("").astype(str) + pd.Series([f" n{i:07d}" for i in range(lo, hi)])
        out[schema.PUBLISHED_AT] = out[schema.PUBLISHED_AT] + pd.to_timedelta(jitter_s[lo:hi], unit="s")
        block = base[source[lo:hi]] + NOISE * rng.standard_normal((hi - lo, base.shape[1]), dtype=np.float32)
        yield lo, out, block / np.linalg.norm(block, axis=1, keepdims=True), model_id, m


def synthetic_vectors(n: int, seed: int = 0) -> np.ndarray:
    """The synthetic corpus's vectors alone, whole (the clustering-only runs)."""
    vectors = np.empty((n, 384), np.float32)
    for lo, _, block, _, _ in synthetic_chunks(n, seed):
        vectors[lo:lo + len(block)] = block
    return vectors


class ReplayEmbedder:
    """The synthetic vectors by the note's marker; other texts (label words) by character hashing."""

    def __init__(self, vectors: np.ndarray | None, model_id: str, dim: int = 384):
        from miner.topics.embed import HashingEmbedder
        self.vectors, self.dim = vectors, dim
        self.model_id = self.model_id_of(model_id)
        self._words = HashingEmbedder(dim=self.dim)

    @staticmethod
    def model_id_of(model_id: str) -> str:
        return f"synthetic-replay-of-{model_id}"

    def encode(self, texts, kind="passage", show_progress=None):
        out = self._words.encode(texts, kind=kind)
        for i, text in enumerate(texts):
            found = MARKER.search(text) if kind == "passage" and self.vectors is not None else None
            if found:
                out[i] = self.vectors[int(found.group(1))]
        return out


# ---- one size, in a child process ---------------------------------------------------------------------
def child_prepare(n: int, folder: Path, out_json: Path) -> None:
    """Write the synthetic notes as the Arrow file a build maps (:mod:`miner.ingest.notes_file`)
    and their vectors into the build's embedding cache, a chunk at a time (own process, so none of
    it counts in the build's memory)."""
    import pyarrow as pa
    from miner.ingest.notes_file import write_notes_file
    from miner.topics.embed import EmbeddingCache, text_key
    from miner.topics.pipeline import notes_texts
    config = bench_config(folder)
    cache = EmbeddingCache(config.embedding_cache_dir, max_shards=10 ** 6)
    info = {}

    def batches():
        for lo, notes, vectors, model_id, m in synthetic_chunks(n):
            # the vectors are "already embedded", so the build's embedding stage reads them
            cache.store(ReplayEmbedder.model_id_of(model_id), "passage", [text_key(t) for t in notes_texts(notes)],
                        vectors)
            info.update(model_id=model_id, source_notes=m)
            yield pa.RecordBatch.from_pandas(notes, preserve_index=False)
    write_notes_file(batches(), folder / "notes.arrow")
    out_json.write_text(json.dumps(info))


def bench_config(folder: Path):
    from miner.config import MinerConfig
    return MinerConfig(models_dir=Path(folder) / "models", workspace_dir=Path(folder) / "ws",
                       embedding_model="hashing")


def child_build(n: int, out_json: Path) -> None:
    from miner.ingest.notes_file import open_notes_file
    from miner.topics.pipeline import build_topics
    with tempfile.TemporaryDirectory(prefix="scale-build-", dir=REPO_ROOT / "bench" / "out") as tmp:
        prepared = run_child(["--child", "prepare", "--n", str(n), "--dir", tmp], timeout=3600)
        config = bench_config(Path(tmp))
        notes = open_notes_file(Path(tmp) / "notes.arrow", config)      # as Workspace.build hands them over
        embedder = ReplayEmbedder(None, prepared["model_id"])            # every note is in the cache
        meter = StageMeter()

        def progress(stage, frac):
            name = next((v for k, v in STAGES.items() if stage.startswith(k)), None)
            if name:
                meter.switch(name if name != "done" else None)
        started = time.perf_counter()
        result = build_topics(config, notes, embedder=embedder, show_progress=False, on_progress=progress)
        meter.close()
        total = time.perf_counter() - started
        snap_dir = Path(result.path)
        emb_bytes = (snap_dir / "embeddings.npy").stat().st_size
        notes_bytes = (Path(tmp) / "notes.arrow").stat().st_size
    import resource
    out_json.write_text(json.dumps({
        "n": n, "source_notes": prepared["source_notes"], "topics": result.n_topics,
        "outlier_share": round(result.outlier_share, 4),
        "embedded_new": result.embedded_new, "seconds_total": round(total, 1), "stages": meter.rows,
        "embeddings_mmap_gb": round(emb_bytes / GB, 3), "notes_mmap_gb": round(notes_bytes / GB, 3),
        "process_max_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GB, 3)}))


def child_cluster(n: int, max_train_size: int | None, out_json: Path) -> None:
    """Clustering only, on the embeddings memory-mapped from disk (what the build gives the clusterer)."""
    from miner.topics.cluster import TopicClusterer
    vectors = synthetic_vectors(n)
    with tempfile.TemporaryDirectory(prefix="scale-cluster-", dir=REPO_ROOT / "bench" / "out") as tmp:
        path = Path(tmp) / "embeddings.npy"
        np.save(path, vectors)
        del vectors
        X = np.load(path, mmap_mode="r")
        meter = StageMeter()
        meter.switch("clustering")
        model = TopicClusterer(min_topic_size=15, seed=42, max_train_size=max_train_size).fit(X)
        meter.close()
    row = meter.rows["clustering"]
    out_json.write_text(json.dumps({"n": n, "max_train_size": max_train_size, "topics": model.n_topics_,
                                    "reference_rows": len(model.reference_), **row}))


def run_child(args: list[str], timeout: float) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", dir=REPO_ROOT / "bench" / "out", delete=False) as fh:
        out = Path(fh.name)
    cmd = [sys.executable, __file__, *args, "--out", str(out)]
    print("  $", " ".join(cmd[1:]), flush=True)
    proc = subprocess.run(cmd, timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed with {proc.returncode}")
    data = json.loads(out.read_text())
    out.unlink()
    return data


# ---- projection ---------------------------------------------------------------------------------------
def project(builds: list[dict], cluster_runs: list[dict], target_n: int = 10_000_000) -> dict:
    """Peak memory and hours at ``target_n`` from the measured sizes (stated assumptions)."""
    embed = json.loads(EMBED_SPEED.read_text())
    rate_1 = float(embed["speed"]["~75-char notes"]["onnx int8"])        # notes/s, one process, 2 cores
    ratio = float(embed["ray_2_over_1_workers"])
    sampled = sorted((c for c in cluster_runs if c["max_train_size"]), key=lambda c: c["n"])
    c1, c2 = sampled[-2:]
    # the clustering stage's private peak, extended linearly in n from the two largest sampled runs
    # (an upper bound if the growth is sub-linear)
    slope = (c2["peak_anon_gb"] - c1["peak_anon_gb"]) / (c2["n"] - c1["n"])
    b1, b2 = sorted(builds, key=lambda r: r["n"])[-2:]

    def linear(key, stage):
        y1, y2 = b1["stages"][stage][key], b2["stages"][stage][key]
        return y2 + (y2 - y1) / (b2["n"] - b1["n"]) * (target_n - b2["n"])
    # Per stage: private peak extended linearly from the two largest builds; for clustering, what the
    # build holds when it starts (texts, tokens, tables: linear) plus what the sampled clustering adds
    # in the clustering-only runs (flat above max_train_size).
    stage_peaks = {stage: round(linear("peak_anon_gb", stage), 2) for stage in b2["stages"] if stage != "clustering"}
    stage_peaks["clustering"] = round(linear("anon_at_start_gb", "clustering")
                                      + c2["peak_anon_gb"] - c2["anon_at_start_gb"], 2)
    scale = target_n / b2["n"]
    st = b2["stages"]
    rest_s = (st["labelling"]["seconds"] + st["indexing"]["seconds"] + st["writing"]["seconds"]) * scale
    cluster_s = st["clustering"]["seconds"] * scale     # the largest build's own clustering stage
    hours = {}
    for workers in (1, 2, 4, 8):
        speedup = ratio ** math.log2(workers)         # the measured 2/1 ratio per doubling of workers
        embed_s = target_n / (rate_1 * speedup)
        seg_s = st["segmenting"]["seconds"] * scale / speedup
        hours[str(workers)] = round((embed_s + seg_s + cluster_s + rest_s) / 3600, 1)
    return {
        "n": target_n,
        "peak_rss_gb": max(stage_peaks.values()),          # the whole build (its largest stage)
        "clustering_peak_rss_gb": round(max(c2["peak_anon_gb"], c2["peak_anon_gb"] + slope * (target_n - c2["n"])), 2),
        "build_peak_rss_gb": max(stage_peaks.values()),
        "build_stage_peak_rss_gb": stage_peaks,
        "embeddings_mmap_gb": round(target_n * 384 * 4 / GB, 2),
        "hours_on_N_workers": hours,
        "assumptions": {
            "embedding_notes_per_s_1_worker": rate_1,
            "embedding_source": "bench/results/embed_speed.json speed['~75-char notes']['onnx int8'] "
                                "(ONNX int8, one process on this 2-core machine)",
            "ray_2_over_1_workers": ratio,
            "workers_scaling": "embedding and segmentation speed × ray_2_over_1_workers per doubling of "
                               "workers (measured for 1→2 only; 4 and 8 extrapolated)",
            "other_stages": f"on one machine: clustering, labelling, indexing and writing scaled linearly "
                            f"from the {b2['n']:,}-note build ({st['clustering']['seconds']:.0f} s clustering), "
                            "segmentation too (divided by the worker speed-up)",
            "memory": f"peak_rss_gb = the largest of build_stage_peak_rss_gb; clustering_peak_rss_gb = the "
                      f"clustering stage's private (anon) peak extended linearly from the "
                      f"{c1['n']:,} and {c2['n']:,}-note clustering runs; build_stage_peak_rss_gb = each build "
                      f"stage's private peak extended linearly from the {b1['n']:,} and {b2['n']:,}-note builds "
                      "(per-note arrays and the vocabulary grow "
                      "linearly), the clustering stage as the memory held at its start (linear) plus the "
                      "sampled clustering's own increment; embeddings stay on disk, memory-mapped",
        },
    }


# ---- report -------------------------------------------------------------------------------------------
def markdown(result: dict) -> str:
    lines = ["## Build memory and time by stage (`bench/scale_build.py`)", "",
             f"{result['run']['date']}, {result['run']['machine']}, load {result['run']['load']}; "
             f"`{result['run']['command']}`. {result['data']}", "",
             "| notes | segment s | embed s (cache read) | cluster s | index s | label+write s | total s | "
             "cluster peak private GB | cluster peak RSS GB (incl. mapped) | build peak private GB | embeddings.npy GB | "
             "notes.arrow GB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for b in result["sizes"]:
        st = b["stages"]
        lines.append(
            f"| {b['n']:,} | {st['segmenting']['seconds']} | {st['embedding']['seconds']} | "
            f"{st['clustering']['seconds']} | {st['indexing']['seconds']} | "
            f"{st['writing']['seconds'] + st['labelling']['seconds']:.1f} | {b['seconds_total']} | "
            f"{b['clustering_peak_rss_gb']} | {st['clustering']['peak_rss_gb']} | "
            f"{max(s['peak_anon_gb'] for s in st.values())} | {b['embeddings_mmap_gb']} | "
            f"{b.get('notes_mmap_gb', '–')} |")
    lines += ["", "Clustering alone on the memory-mapped embeddings (fresh process each):", "",
              "| notes | max_train_size | seconds | peak private GB | peak RSS GB (incl. mapped) | reference rows |",
              "|---|---|---|---|---|---|"]
    for c in result["clustering_only"]:
        lines.append(f"| {c['n']:,} | {c['max_train_size'] if c['max_train_size'] else 'None (all in memory)'} | "
                     f"{c['seconds']} | {c['peak_anon_gb']} | {c['peak_rss_gb']} | {c['reference_rows']:,} |")
    p = result["projected_10m"]
    ib = result["clustering_stage_in_largest_build"]
    lines += ["", f"Inside the {ib['n']:,}-note build the clustering stage peaked at {ib['process_private_peak_gb']} GB "
              f"private, of which {ib['held_at_start_gb']} GB was held before it started (per-note arrays, vocabulary, "
              f"the process itself): "
              f"clustering itself added {ib['clustering_increment_gb']} GB."]
    for key in ("clustering_only_reused", "builds_kept", "note"):
        if result["run"].get(key):
            lines += ["", result["run"][key] + "."]
    lines += ["", f"Projected to 10M notes: clustering peak private memory ≈ {p['clustering_peak_rss_gb']} GB, "
              f"whole build ≈ {p['build_peak_rss_gb']} GB, beside {p['embeddings_mmap_gb']} GB of memory-mapped "
              "embeddings; hours on N workers " +
              ", ".join(f"{k}: {v}" for k, v in p["hours_on_N_workers"].items()) +
              f" ({p['assumptions']['embedding_notes_per_s_1_worker']} notes/s int8 embedding on one worker, "
              f"× {p['assumptions']['ray_2_over_1_workers']} per doubling; {p['assumptions']['other_stages']}).",
              "", "Projected private peak per build stage at 10M (GB): " +
              ", ".join(f"{k} {v}" for k, v in p["build_stage_peak_rss_gb"].items()) +
              ". The notes are memory-mapped from an Arrow file (texts, ids and tags are file pages, not "
              "private memory) and the token lists are word ids on disk with one Arrow vocabulary; what "
              "still grows with the corpus is per-note numeric arrays (counts, times, labels, scores: tens "
              "of bytes a note) and the vocabulary (the bench gives every note a unique marker word, "
              "more than a real corpus's Heaps'-law growth). The note index's inverted lists (`IVF…,Flat`) are built shard by shard "
              "on disk and memory-mapped; the snapshot writer converts 100k rows at a time; the "
              "clustering stage's own increment does not grow above max_train_size.",
              "", f"Target (clustering peak ≤ 2 GB at 1M beside the mapped embeddings): "
              f"{'met' if result['targets_met']['clustering_peak_le_2gb_1m'] else 'NOT met'} "
              f"({result['clustering_peak_rss_gb_1m']} GB, clustering alone at 1M on the mapped embeddings). "
              f"Target (a 10M-note build within a few GB, read ≤ 4 GB): "
              f"{'met' if result['targets_met']['build_peak_le_4gb_10m_projected'] else 'NOT met'} "
              f"({result['projected_10m']['peak_rss_gb']} GB projected for the whole build).", ""]
    return "\n".join(lines)


def write_results_md(section: str) -> None:
    text = RESULTS_MD.read_text(encoding="utf-8") if RESULTS_MD.exists() else ""
    head = "## Build memory and time by stage (`bench/scale_build.py`)"
    if head in text:
        start = text.index(head)
        nxt = text.find("\n## ", start + len(head))
        text = text[:start] + section + (text[nxt + 1:] if nxt >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS_MD.write_text(text, encoding="utf-8")


def _in_build(builds: list[dict]) -> dict:
    """The clustering stage inside the largest build: what the process held, and what clustering added."""
    b = max(builds, key=lambda r: r["n"])
    c = b["stages"]["clustering"]
    return {"n": b["n"], "process_private_peak_gb": c["peak_anon_gb"], "held_at_start_gb": c["anon_at_start_gb"],
            "clustering_increment_gb": round(c["peak_anon_gb"] - c["anon_at_start_gb"], 3)}


def _comparison(runs: list[dict]) -> dict | None:
    """Sampled vs all-in-memory clustering at the same size: peak private memory and time ratios."""
    for old in (c for c in runs if not c["max_train_size"]):
        new = next((c for c in runs if c["max_train_size"] and c["n"] == old["n"]), None)
        if new:
            return {"n": old["n"], "peak_anon_gb": [new["peak_anon_gb"], old["peak_anon_gb"]],
                    "seconds": [new["seconds"], old["seconds"]],
                    "memory_ratio": round(new["peak_anon_gb"] / old["peak_anon_gb"], 3),
                    "time_ratio": round(new["seconds"] / old["seconds"], 3),
                    "order": "[max_train_size default, None]"}
    return None


def _measured_builds(result: dict) -> list[dict]:
    """The build rows of a written result as run_child returned them (derived copies dropped)."""
    return [{k: v for k, v in b.items() if k not in ("stage_seconds", "clustering_peak_rss_incl_mapped_gb")}
            for b in result["sizes"]]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="50000,200000,1000000", help="full builds")
    ap.add_argument("--cluster-sizes", default="500000,1000000", help="clustering-only runs, default max_train_size")
    ap.add_argument("--compare", default="1000000", help="clustering-only runs with max_train_size=None")
    ap.add_argument("--reuse-clustering-only", action="store_true",
                    help="skip the clustering-only runs and keep those already in the JSON; the run records it")
    ap.add_argument("--keep-builds", action="store_true",
                    help="skip the full builds and keep those already in the JSON (e.g. to re-measure "
                         "clustering alone after the builds); the run records it")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--child", choices=["prepare", "build", "cluster"])
    ap.add_argument("--dir", type=Path, help="--child prepare: the build's folder")
    ap.add_argument("--n", type=int)
    ap.add_argument("--max-train-size", default="default")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--note", default="", help="with --summarise-only: a remark on the run, kept in the JSON")
    ap.add_argument("--summarise-only", action="store_true",
                    help="recompute the derived figures and RESULTS.md from the measured rows in the JSON")
    args = ap.parse_args(argv)
    if args.summarise_only:
        old = json.loads(RESULTS.read_text(encoding="utf-8"))
        builds = _measured_builds(old)
        result = summarise(builds, old["clustering_only"], old["run"], time.perf_counter() - old["run"]["seconds"])
        result["run"]["load"] = old["run"]["load"]
        result["run"]["summarised_again"] = "derived figures recomputed with --summarise-only from the measured rows"
        if args.note:
            result["run"]["note"] = args.note
        write_all(result)
        return 0
    if args.child == "prepare":
        child_prepare(args.n, args.dir, args.out)
        return 0
    if args.child == "build":
        child_build(args.n, args.out)
        return 0
    if args.child == "cluster":
        from miner.topics.cluster import MAX_TRAIN_SIZE
        mts = MAX_TRAIN_SIZE if args.max_train_size == "default" else (
            None if args.max_train_size == "none" else int(args.max_train_size))
        child_cluster(args.n, mts, args.out)
        return 0

    (REPO_ROOT / "bench" / "out").mkdir(parents=True, exist_ok=True)
    info = run_info(argv)
    started = time.perf_counter()
    builds, clustering_only = [], []
    old = json.loads(RESULTS.read_text(encoding="utf-8")) if args.reuse_clustering_only or args.keep_builds else None
    if args.reuse_clustering_only:
        clustering_only = old["clustering_only"]
        args.cluster_sizes = args.compare = ""
        info["clustering_only_reused"] = (f"Clustering-only rows kept from the run of {old['run']['date']} "
                                          "(--reuse-clustering-only)")
    if args.keep_builds:
        builds = _measured_builds(old)
        args.sizes = ""
        info["builds_kept"] = (f"Full builds kept from the run of {old['run']['date']} (`{old['run']['command']}`); "
                               "the clustering-only runs were measured after them (--keep-builds)")
    # clustering alone first (the memory target), then the builds, largest last; the JSON is
    # rewritten after each run, so an interrupted run keeps what it measured
    runs = [("cluster", int(s), "default") for s in args.cluster_sizes.split(",") if s]
    runs += [("cluster", int(s), "none") for s in args.compare.split(",") if s]
    runs += [("build", int(s), None) for s in args.sizes.split(",") if s]
    for kind, n, mts in runs:
        print(f"{kind} at {n:,} notes{f', max_train_size={mts}' if mts else ''}…", flush=True)
        if kind == "cluster":
            clustering_only.append(run_child(["--child", "cluster", "--n", str(n), "--max-train-size", mts],
                                             args.timeout))
            print(json.dumps(clustering_only[-1]), flush=True)
        else:
            b = run_child(["--child", "build", "--n", str(n)], args.timeout)
            b["clustering_peak_rss_gb"] = b["stages"]["clustering"]["peak_anon_gb"]
            builds.append(b)
            print(json.dumps(b, ensure_ascii=False), flush=True)
        if not args.no_write and len(builds) >= 2 and sum(1 for c in clustering_only if c["max_train_size"]) >= 2:
            write_all(summarise(builds, clustering_only, info, started))
    result = summarise(builds, clustering_only, info, started)
    print(json.dumps(result["projected_10m"], indent=2, ensure_ascii=False))
    if not args.no_write:
        write_all(result)
    return 0


def summarise(builds, clustering_only, info, started) -> dict:
    from miner.topics.blocks import CHUNK_ROWS
    from miner.topics.cluster import MAX_TRAIN_SIZE
    sampled = [c for c in clustering_only if c["max_train_size"]]
    at_1m = next((c for c in sampled if c["n"] == 1_000_000), max(sampled, key=lambda c: c["n"]))
    result = {
        "data": (f"Texts: the demo corpus's {builds[0]['source_notes']:,} real notes replicated (unique title "
                 f"marker, publish time ±20 days), written by a separate process to the Arrow file the build "
                 f"memory-maps, as Workspace.build does (notes_mmap_gb: its size; every copy's text is stored, "
                 f"none shared). Vectors: SYNTHETIC — the demo notes' real e5 int8 embeddings "
                 f"plus N(0, {NOISE}²) noise per dimension, re-normalised, stored in the build's cache beforehand "
                 "(the embedding stage is a cache read; embedding itself is projected from embed_speed.json). "
                 f"TopicClusterer(max_train_size={MAX_TRAIN_SIZE:,}), blocks of {CHUNK_ROWS:,} notes. "
                 "Private = RssAnon (sampled every 20 ms): memory beside the memory-mapped notes and embeddings; "
                 "RSS = VmHWM of the stage, mapped file pages included."),
        "sizes": [{"n": b["n"], "stage_seconds": {k: v["seconds"] for k, v in b["stages"].items()},
                   "clustering_peak_rss_gb": b["clustering_peak_rss_gb"],
                   "clustering_peak_rss_incl_mapped_gb": b["stages"]["clustering"]["peak_rss_gb"],
                   "embeddings_mmap_gb": b["embeddings_mmap_gb"], **b} for b in builds],
        "clustering_only": clustering_only,
        f"clustering_peak_rss_gb_{'1m' if at_1m['n'] == 1_000_000 else str(at_1m['n'])}": at_1m["peak_anon_gb"],
        "clustering_1m_vs_all_in_memory": _comparison(clustering_only),
        "clustering_stage_in_largest_build": _in_build(builds),
        "projected_10m": project(builds, clustering_only),
        "run": {**info, "load": load_average(),
                "seconds": round(time.perf_counter() - started, 1)},
    }
    result.setdefault("clustering_peak_rss_gb_1m", None)
    value = result["clustering_peak_rss_gb_1m"]
    result["targets_met"] = {"clustering_peak_le_2gb_1m": bool(value is not None and value <= 2.0),
                             # "a 10M-note build's peak memory stays within a few GB" (read: ≤ 4 GB)
                             "build_peak_le_4gb_10m_projected": bool(result["projected_10m"]["peak_rss_gb"] <= 4.0)}
    return result


def write_all(result: dict) -> None:
    RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_results_md(markdown(result))
    print(f"wrote {RESULTS} and a section of {RESULTS_MD}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
