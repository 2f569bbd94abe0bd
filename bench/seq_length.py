"""Choose the int8 embedder's ``max_seq_length`` and ``batch_size`` by measurement.

Speed: notes/s of the default int8 ONNX embedder on real demo notes (Bilibili videos and
e-commerce reviews, title + body + hashtags, the main job's texts) for each (max_seq_length,
batch_size) pair, all in one run. Quality: NMI of the topics (``TopicClusterer``, 3 seeds) against
the real ``main_zone`` labels of Bilibili videos (title + desc, the labelled dataset with the
longest texts, where truncation could hurt) per max_seq_length, and the mean cosine of each
setting's vectors to the longest one's.

    python bench/seq_length.py          # ~5 min on 2 cores; writes bench/results/seq_length.json
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO_ROOT, load_sample, markdown_table, print_header, run_info  # noqa: E402

from miner.config import MinerConfig  # noqa: E402
from miner.topics.embed import get_embedder  # noqa: E402
from miner.topics.pipeline import notes_texts  # noqa: E402

RESULTS = REPO_ROOT / "bench" / "results" / "seq_length.json"
RESULTS_MD = REPO_ROOT / "bench" / "RESULTS.md"
SETTINGS = [(256, 64), (256, 16), (192, 16), (128, 64), (128, 16), (128, 8)]
LENGTHS = [512, 256, 128]
SEEDS = [42, 43, 44]


def embedder(max_seq_length: int, batch_size: int):
    model = get_embedder("e5-small-int8", max_seq_length)
    model.batch_size, model.show_progress = batch_size, False
    return model


def speed(texts: list[str]) -> list[dict]:
    rows = []
    for length, batch in SETTINGS:
        model = embedder(length, batch)
        model.encode(texts[:32])                                    # load + first batch
        started = time.perf_counter()
        model.encode(texts)
        rate = len(texts) / (time.perf_counter() - started)
        rows.append({"max_seq_length": length, "batch_size": batch, "notes_per_s": round(rate, 1)})
        print(f"  L{length} bs{batch}: {rate:.1f} notes/s", flush=True)
    return rows


def quality(n: int) -> list[dict]:
    from sklearn.metrics import normalized_mutual_info_score

    from miner.topics.cluster import TopicClusterer, as_float32_normalized
    sample = load_sample("bilibili", n, 42)
    texts, truth = sample["text"].tolist(), sample["label"].to_numpy()
    rows, longest = [], None
    for length in LENGTHS:
        model = embedder(length, 16)
        X = as_float32_normalized(model.encode(texts))
        longest = X if longest is None else longest
        tokens = np.array([len(e.ids) for e in model._tokenize(texts, "passage")])
        nmi = [float(normalized_mutual_info_score(truth, TopicClusterer(seed=s).fit(X).labels_)) for s in SEEDS]
        rows.append({"max_seq_length": length, "nmi": round(float(np.mean(nmi)), 4), "nmi_runs": nmi,
                     "truncated_share": round(float(np.mean(tokens >= length)), 3),
                     "cosine_to_longest": round(float(np.mean(np.sum(X * longest, axis=1))), 4)})
        print(f"  L{length}: NMI {np.mean(nmi):.4f} truncated {rows[-1]['truncated_share']:.1%}", flush=True)
    return rows


def main() -> None:
    info = run_info()
    print_header("max_seq_length / batch_size of the int8 embedder", info)
    started = time.perf_counter()
    notes = pd.read_parquet(REPO_ROOT / "data" / "demo" / "notes.parquet").sample(800, random_state=0)
    texts = notes_texts(notes)
    speed_rows = speed(texts)
    quality_rows = quality(1500)
    default = MinerConfig()
    base = next(r for r in speed_rows if (r["max_seq_length"], r["batch_size"]) == (256, 64))
    chosen = next(r for r in speed_rows if (r["max_seq_length"], r["batch_size"]) ==
                  (default.embedding_max_seq_length, default.embedding_batch_size))
    nmi = {r["max_seq_length"]: r["nmi"] for r in quality_rows}
    result = {"demo_notes": len(texts), "speed": speed_rows, "quality_bilibili": quality_rows,
              "default": {"max_seq_length": default.embedding_max_seq_length,
                          "batch_size": default.embedding_batch_size},
              "default_over_L256_bs64": round(chosen["notes_per_s"] / base["notes_per_s"], 2),
              "nmi_loss_default_vs_L512": round(nmi[512] - nmi.get(default.embedding_max_seq_length, np.nan), 4),
              "run": {**info, "seconds": round(time.perf_counter() - started, 1)}}
    RESULTS.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    write_markdown(result)
    print(json.dumps({k: v for k, v in result.items() if k not in ("speed", "quality_bilibili")}, ensure_ascii=False))


def write_markdown(result: dict) -> None:
    marker = "## int8 embedder: max_seq_length and batch size (bench/seq_length.py)"
    text = RESULTS_MD.read_text(encoding="utf-8") if RESULTS_MD.exists() else ""
    if marker in text:
        start = text.index(marker)
        nxt = text.find("\n## ", start + len(marker))
        text = text[:start] + (text[nxt + 1:] if nxt >= 0 else "")
    d = result["default"]
    section = "\n".join([
        marker, "",
        f"Run {result['run']['date']} (load {result['run']['load']}). Speed on {result['demo_notes']} real demo "
        f"notes; NMI against Bilibili `main_zone` on 1,500 real videos (3 seeds).", "",
        markdown_table(result["speed"], ["max_seq_length", "batch_size", "notes_per_s"]), "",
        markdown_table(result["quality_bilibili"], ["max_seq_length", "nmi", "truncated_share", "cosine_to_longest"]),
        "",
        f"Default: max_seq_length={d['max_seq_length']}, batch_size={d['batch_size']} — "
        f"{result['default_over_L256_bs64']}× the previous default (256, 64); NMI loss vs 512 tokens "
        f"{result['nmi_loss_default_vs_L512']:+.4f}.", ""])
    RESULTS_MD.write_text(text.rstrip() + "\n\n" + section, encoding="utf-8")


if __name__ == "__main__":
    main()
