"""Ray executor scaling: embedding throughput with 2 Ray workers ÷ 1 (one CPU per worker).

Texts: ``--n`` real NLPCC headlines (fixed seed). Each measurement starts a fresh local Ray
cluster of N workers (``num_cpus=1`` per actor, one torch / OpenMP thread each), loads the model
in every actor before the clock starts, then embeds all texts (no cache). Reports notes/s for 1
and 2 workers and ``ray_2_over_1_workers``; target ≥ 1.6 on a 2-core machine.

    flock /work/bench.lock python bench/ray_scaling.py
    flock /work/bench.lock python bench/ray_scaling.py --model hashing --n 2000
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BENCH_DIR, load_sample, print_header, run_info  # noqa: E402
from miner.atomic import write_text_atomic  # noqa: E402
from miner.config import MinerConfig  # noqa: E402
from miner.topics.executor import embedding_throughput  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=768)
    parser.add_argument("--model", default=None, help="embedding model (default: MinerConfig().embedding_model)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    info = run_info(argv)
    print_header("Ray executor scaling", info)
    config = MinerConfig() if args.model is None else MinerConfig(embedding_model=args.model)
    texts = load_sample("nlpcc", args.n, args.seed)["text"].astype(str).tolist()
    one = embedding_throughput(config, texts, 1)
    two = embedding_throughput(config, texts, 2)
    result = {**info, "model": config.embedding_model, "n_texts": len(texts),
              "notes_per_s_1_worker": round(one, 2), "notes_per_s_2_workers": round(two, 2),
              "ray_2_over_1_workers": round(two / one, 3), "target": 1.6}
    print(json.dumps(result, ensure_ascii=False, indent=2))
    out = BENCH_DIR / "results" / "ray_scaling.json"
    write_text_atomic(out, json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
