"""Audience metrics recover planted truth: conserved attribution, matched 关联提升, null topics.

Worlds come from :func:`miner.simulate.simulate_planted` (SIMULATED): some (topic, brand) pairs
multiply the brand's purchase hazard after an engaged touch, every other pair is null, and user
activity confounds naive comparisons (active users see more topics and buy more). On each world:

* ``attribution_conservation_max`` — max over brands, periods (the planted window, its two halves,
  all data) and rules (even, time_decay, last_touch) of Σ topic attributed GMV ÷ brand GMV;
* ``planted_lift_median_abs_rel_error`` — median over planted pairs of |assoc_lift − true| ÷ true,
  where true = the risk ratio the simulator computes from its hazards for the window's touched users;
* ``null_lift_false_positive_rate`` — share of null pairs whose 95 % lift interval excludes 1
  (``null_naive_lift_median`` / ``_range``: the unmatched comparison on the same pairs, to show the
  confounding is there); plus group sizes.

``run(quick=False)`` returns the dict; ``python bench/recovery_audience.py`` also writes
``bench/results/insight_recovery_audience.json`` (``--quick`` only prints).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULT = ROOT / "bench" / "results" / "insight_recovery_audience.json"
SEEDS_FULL, SEEDS_QUICK = (1, 2, 3), (1,)


def _connect(world):
    import duckdb
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    for name in ("engagements", "audience", "orders"):
        con.register("_f", getattr(world.data, name))
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM _f")
        con.unregister("_f")
    return con


def _periods(world):
    start, end = (pd.Timestamp(x) for x in world.window)
    mid = start + (end - start) / 2
    return {"window": world.window, "first_half": (str(start.date()), str(mid.date())),
            "second_half": (str(mid.date()), str(end.date())), "all": None}


def evaluate_world(world, rules=("even", "time_decay", "last_touch"), periods=None) -> dict:
    """Conservation over ``periods`` × ``rules`` (default every period) and the lift on the window."""
    from miner.insights.audience import UNATTRIBUTED, order_value
    con = _connect(world)
    ratios = []
    lifted = None
    todo = [(p, w, r) for p, w in _periods(world).items() if periods is None or p in periods for r in rules]
    if ("window", world.window, "even") not in todo:
        todo.insert(0, ("window", world.window, "even"))
    for pname, window, rule in todo:
        out = order_value(con, world.assignments, window=window, attribution_days=world.attribution_days,
                          k=1, rule=rule, prior_days=world.prior_days)
        topics = out[out["topic_id"] != UNATTRIBUTED]
        per_brand = topics.groupby("brand")["attributed_gmv"].sum()
        brand_gmv = out.groupby("brand")["brand_gmv"].first()
        un = out[out["topic_id"] == UNATTRIBUTED].set_index("brand")["attributed_gmv"]
        for b in brand_gmv.index:
            ratios.append({"period": pname, "rule": rule, "brand": b, "ratio": per_brand[b] / brand_gmv[b],
                           "closes": abs(per_brand[b] + un[b] - brand_gmv[b]) <= 1e-6 * brand_gmv[b]})
        if pname == "window" and rule == "even":
            lifted = out
    con.close()
    lift = lifted[lifted["topic_id"] != UNATTRIBUTED].merge(world.effects, on=["topic_id", "brand"])
    lift["abs_rel_error"] = (lift["assoc_lift"] - lift["true_lift"]).abs() / lift["true_lift"]
    lift["naive_abs_rel_error"] = (lift["naive_lift"] - lift["true_lift"]).abs() / lift["true_lift"]
    return {"ratios": pd.DataFrame(ratios), "lift": lift}


def run(quick: bool = False) -> dict:
    """Simulate, measure, summarise (quick: one world of 12k users; full: three of 20k).

    Conservation runs every period × rule on the first world (quick: the window and all data), the
    lift runs on the window of every world."""
    from miner.simulate import simulate_planted
    started = time.perf_counter()
    seeds = SEEDS_QUICK if quick else SEEDS_FULL
    n_users = 12000 if quick else 20000
    ratios, lifts = [], []
    for i, seed in enumerate(seeds):
        periods = (("window", "all") if quick else None) if i == 0 else ("window",)
        res = evaluate_world(simulate_planted(n_users=n_users, seed=seed),
                             rules=("even", "time_decay", "last_touch") if i == 0 else ("even",), periods=periods)
        ratios.append(res["ratios"].assign(seed=seed))
        lifts.append(res["lift"].assign(seed=seed))
    ratios, lift = pd.concat(ratios, ignore_index=True), pd.concat(lifts, ignore_index=True)
    planted, null = lift[lift["factor"] != 1.0], lift[lift["factor"] == 1.0]
    null_shown = null[null["lift_significant"].notna()]
    out = {
        "attribution_conservation_max": round(float(ratios["ratio"].max()), 9),
        "attribution_closes_with_unattributed": bool(ratios["closes"].all()),
        "planted_lift_median_abs_rel_error": float(planted["abs_rel_error"].median()),
        "planted_lift_max_abs_rel_error": float(planted["abs_rel_error"].max()),
        "planted_lift_naive_median_abs_rel_error": float(planted["naive_abs_rel_error"].median()),
        "planted_lift_ci_coverage": float(((planted["assoc_lift_lo"] <= planted["true_lift"])
                                           & (planted["true_lift"] <= planted["assoc_lift_hi"])).mean()),
        "null_lift_false_positive_rate": float(null_shown["lift_significant"].astype(bool).mean()),
        "null_naive_lift_median": float(null["naive_lift"].median()),
        "null_naive_lift_range": [float(null["naive_lift"].min()), float(null["naive_lift"].max())],
        "null_assoc_lift_median": float(null["assoc_lift"].median()),
        "n_planted_pairs": int(len(planted)), "n_null_pairs": int(len(null_shown)),
        "n_null_pairs_suppressed": int(len(null) - len(null_shown)),
        "n_reached_median": float(lift["n_reached"].median()),
        "n_matched_control_median": float(lift["n_matched_control"].median()),
        "planted": planted[["seed", "topic_id", "brand", "factor", "true_lift", "assoc_lift", "assoc_lift_lo",
                            "assoc_lift_hi", "naive_lift", "n_reached", "n_matched_control"]].round(4).to_dict("records"),
        "conservation_checks": int(len(ratios)),
        "worlds": {"seeds": list(seeds), "n_users": n_users, "n_topics": 40, "brands": 3, "k": 1,
                   "conservation_periods": sorted(set(ratios["period"])), "rules": sorted(set(ratios["rule"]))},
        "seconds": round(time.perf_counter() - started, 1),
    }
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    out = run(quick=args.quick)
    if not args.quick:                     # a quick run only prints: the committed JSON is the full run
        from miner.atomic import atomic_path
        with atomic_path(RESULT, suffix=".json") as tmp:
            Path(tmp).write_text(json.dumps(out, ensure_ascii=False, indent=1), encoding="utf-8")
    print(json.dumps({k: v for k, v in out.items() if k != "planted"}, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
