"""Do the numbers a planner sees recover known truth? One run of both halves, one JSON, one table.

* audience (:mod:`bench.recovery_audience`): conserved attribution, matched 关联提升 on planted
  topics, the false-positive rate on null topics (SIMULATED worlds with planted truth);
* trends (:mod:`bench.recovery_trends`): BH-controlled burst calls on planted bursts, and yearly
  seasons on the real zhihu hot-list series (PROVENANCE's known answers).

``python bench/insight_recovery.py [--quick]`` writes ``bench/results/insight_recovery.json`` with
the keys issue #10 names and replaces the "Insight recovery" section of ``bench/RESULTS.md``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from miner.atomic import write_text_atomic  # noqa: E402

RESULT = ROOT / "bench" / "results" / "insight_recovery.json"
RESULTS_MD = ROOT / "bench" / "RESULTS.md"
SECTION = "## Insight recovery (bench/insight_recovery.py)"
KEYS = ("attribution_conservation_max", "planted_lift_median_abs_rel_error", "null_lift_false_positive_rate",
        "trend_precision", "trend_recall", "zhihu_seasonal_found")
TARGETS = {
    "attribution_conservation_max": ("≤ 1.0", lambda v: v <= 1.0),
    "planted_lift_median_abs_rel_error": ("≤ 0.20", lambda v: v <= 0.20),
    "null_lift_false_positive_rate": ("≤ 0.05", lambda v: v <= 0.05),
    "trend_precision": ("≥ 0.9", lambda v: v >= 0.9),
    "trend_recall": ("≥ 0.8", lambda v: v >= 0.8),
    "zhihu_seasonal_found": ("高考 春晚 双十一 中秋 七夕", lambda v: {"高考", "春晚", "双十一", "中秋", "七夕"} <= set(v)),
}


def _load(name: str):
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(quick: bool = False) -> dict:
    started = time.perf_counter()
    audience = _load("recovery_audience").run(quick=quick)
    trends = _load("recovery_trends").run(quick=quick)
    out = {k: audience.get(k, trends.get(k)) for k in KEYS}
    out["zhihu_not_seasonal_ok"] = trends.get("zhihu_not_seasonal_ok")
    out["targets_met"] = {k: bool(TARGETS[k][1](out[k])) for k in KEYS}
    out["audience"] = {k: v for k, v in audience.items() if k not in KEYS and k != "planted"}
    out["trends"] = {k: v for k, v in trends.items() if k not in KEYS}
    out["meta"] = {"date": dt.datetime.now().isoformat(timespec="seconds"), "quick": quick,
                   "seconds": round(time.perf_counter() - started, 1), "nproc": os.cpu_count(),
                   "python": platform.python_version(), "load_average": list(os.getloadavg())}
    return out


def table(out: dict) -> str:
    rows = ["| key | result | target | met |", "|---|---|---|---|"]
    for k in KEYS:
        v = out[k]
        shown = "、".join(v) if isinstance(v, list) else (f"{v:.4g}" if isinstance(v, float) else str(v))
        rows.append(f"| `{k}` | {shown} | {TARGETS[k][0]} | {'yes' if out['targets_met'][k] else 'no'} |")
    rows.append(f"| `zhihu_not_seasonal_ok` (世界杯, 奥运 not yearly) | {out['zhihu_not_seasonal_ok']} | True | "
                f"{'yes' if out['zhihu_not_seasonal_ok'] else 'no'} |")
    return "\n".join(rows)


def write_results_md(out: dict) -> None:
    text = RESULTS_MD.read_text(encoding="utf-8") if RESULTS_MD.exists() else ""
    body = (f"{SECTION}\n\nOne run of both halves ({out['meta']['date']}, {out['meta']['seconds']} s, load "
            f"{out['meta']['load_average'][0]:.1f} on {out['meta']['nproc']} cores). Audience worlds are SIMULATED "
            f"with planted truth; seasons come from the real zhihu hot-list series (method: "
            f"{out['trends'].get('zhihu_method', '?')}). Details of each half: the sections below and "
            f"`bench/results/insight_recovery_{{audience,trends}}.json`.\n\n{table(out)}\n")
    if SECTION in text:
        head, rest = text.split(SECTION, 1)
        nxt = rest.find("\n## ")
        text = head + body + (rest[nxt:] if nxt >= 0 else "")
    else:
        text = text.rstrip() + "\n\n" + body
    write_text_atomic(RESULTS_MD, text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller worlds; prints only")
    args = parser.parse_args()
    out = run(quick=args.quick)
    print(table(out))
    if not args.quick:
        write_text_atomic(RESULT, json.dumps(out, ensure_ascii=False, indent=1, default=str) + "\n")
        write_results_md(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
