"""First search after the app is up, without a browser (Streamlit AppTest, fresh process per case).

    python bench/first_search.py                    # this checkout
    python bench/first_search.py --repo /work/main --label before

Default embedder (``MinerConfig().embedding_model``) on a small real build (``--notes`` demo notes,
built once under bench/out/first_search). Each case starts a fresh Python process (cold caches, as
a fresh server): the search page runs once (page up), then after ``delay`` seconds the query is
entered and that script run is timed until its results are rendered. ``delay`` 0 = the query typed
at once; a longer delay shows whether the background warm-up (embedder load + searcher fit, started
by the first page view) was ready by then. Writes bench/results/first_search[-LABEL].json.
Complements bench/app_speed.py (real browser), which needs Debian's chromium.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out" / "first_search"
QUERY = "露营 装备"


def child(repo: Path, root: Path, notes_n: int, delay: float) -> dict:
    sys.path.insert(0, str(repo))
    os.chdir(repo)
    from common import small_real_workspace
    config, env, built = small_real_workspace(root, notes_n, repo)
    if built:
        return {"built": True}
    os.environ.update(env)
    model = config.embedding_model
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file("pages/search.py", default_timeout=600)
    started = time.perf_counter()
    at.run()
    up = time.perf_counter()
    time.sleep(delay)
    asked = time.perf_counter()
    at.text_input(key="search.query").input(QUERY).run()
    done = time.perf_counter()
    shown = any("选题方向" in c.value or "最接近" in c.value for c in at.caption)
    if not shown or at.exception:
        raise SystemExit(f"no results shown: {[e.value for e in at.exception][:1]}")
    return {"model": Path(str(model)).name, "page_up_s": round(up - started, 2), "delay_s": delay,
            "first_search_s": round(done - asked, 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=REPO)
    parser.add_argument("--label", default="")
    parser.add_argument("--notes", type=int, default=300)
    parser.add_argument("--delays", type=float, nargs="+", default=[0.0, 20.0])
    parser.add_argument("--child", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    if args.child is not None:
        print("RESULT " + json.dumps(child(args.repo.resolve(), OUT, args.notes, args.child)), flush=True)
        return 0
    cases = []
    for delay in [None] + list(args.delays):       # None: build the workspace if missing
        cmd = [sys.executable, str(Path(__file__).resolve()), "--repo", str(args.repo), "--notes", str(args.notes),
               "--child", str(delay or 0.0)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        row = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
        if delay is not None or "built" not in row:
            cases.append(row)
            print(row, flush=True)
    result = {"repo": str(args.repo), "label": args.label or "after", "notes": args.notes, "query": QUERY,
              "commit": subprocess.run(["git", "-C", str(args.repo), "rev-parse", "--short", "HEAD"],
                                       capture_output=True, text=True).stdout.strip(),
              "cases": cases, "first_search_s_at_once": cases[-len(args.delays)]["first_search_s"],
              "first_search_s_after_delay": cases[-1]["first_search_s"],
              "load_average": " ".join(f"{x:.1f}" for x in os.getloadavg())}
    sys.path.insert(0, str(REPO))
    from miner.atomic import write_json_atomic
    name = "first_search.json" if not args.label else f"first_search-{args.label}.json"
    (BENCH / "results").mkdir(exist_ok=True)
    write_json_atomic(BENCH / "results" / name, result)
    print(json.dumps({k: v for k, v in result.items() if k != "cases"}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
