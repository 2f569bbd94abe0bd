"""The topic registry: permanent topic ids, their lineage and their curation, in the workspace DuckDB.

Tables (all written inside one transaction per change, so a crash leaves the last committed state):

``topic_registry``       one row per permanent id ever issued: status (active / merged / retired),
                         born_at/born_run/born_event/parent_id, retired_at/retired_run/merged_into,
                         auto_label and size at the last run, and the curation state: ``label``
                         (a planner's name), ``hidden``, ``pinned``, ``curated_into`` (merged by hand)
``topic_lineage``        one row per lineage event of a run (continued, split, merged, born, retired)
``topic_audit``          one row per curation action: who, when, action, topic, before/after (JSON)
``topic_splits``         standing split rules (keyword or note ids) replayed on every later run
``emerging_candidates``  dense groups of unassigned notes waiting to persist (see ``miner.topics.update``)
``registry_runs``        runs whose registry delta has been applied (makes applying idempotent)

A build or update never writes the registry before its snapshot is serving: it stores a *delta*
(events, topic rows, candidates) in the snapshot's ``config.json``, moves ``latest``, then applies
the delta in one transaction. If the process dies in between, :func:`sync_registry` (called before
every read that matters) finds ``latest`` not yet applied and applies it, so registry and serving
snapshot never disagree for long and never half-way.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import datetime
from typing import Iterator
from zoneinfo import ZoneInfo

import pandas as pd

from miner import schema
from miner.config import MinerConfig
from miner.store import Store

ACTIVE, MERGED_STATUS, RETIRED_STATUS = "active", "merged", "retired"

DDL = (
    """CREATE TABLE IF NOT EXISTS topic_registry (
        topic_id BIGINT PRIMARY KEY, status VARCHAR NOT NULL,
        born_at TIMESTAMPTZ, born_run VARCHAR, born_event VARCHAR, parent_id BIGINT,
        retired_at TIMESTAMPTZ, retired_run VARCHAR, merged_into BIGINT,
        auto_label VARCHAR, size BIGINT, last_run VARCHAR,
        label VARCHAR, hidden BOOLEAN DEFAULT FALSE, pinned BOOLEAN DEFAULT FALSE, curated_into BIGINT)""",
    """CREATE TABLE IF NOT EXISTS topic_lineage (
        run_id VARCHAR NOT NULL, event_at TIMESTAMPTZ NOT NULL, event VARCHAR NOT NULL,
        topic_id BIGINT NOT NULL, related_id BIGINT, similarity DOUBLE)""",
    """CREATE TABLE IF NOT EXISTS topic_audit (
        audit_id BIGINT PRIMARY KEY, acted_at TIMESTAMPTZ NOT NULL, actor VARCHAR NOT NULL,
        action VARCHAR NOT NULL, topic_id BIGINT, before_json VARCHAR, after_json VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS topic_splits (
        rule_id BIGINT PRIMARY KEY, source_id BIGINT NOT NULL, target_id BIGINT NOT NULL,
        keyword VARCHAR, note_ids VARCHAR[], created_at TIMESTAMPTZ)""",
    """CREATE TABLE IF NOT EXISTS emerging_candidates (
        candidate_id VARCHAR PRIMARY KEY, centroid FLOAT[] NOT NULL, first_run VARCHAR,
        first_day DATE, last_run VARCHAR, last_day DATE, seen INTEGER, size INTEGER, note_ids VARCHAR[])""",
    """CREATE TABLE IF NOT EXISTS registry_runs (
        run_id VARCHAR PRIMARY KEY, kind VARCHAR, applied_at TIMESTAMPTZ)""",
)
REGISTRY_TABLES = tuple(ddl.split("EXISTS ", 1)[1].split(" ", 1)[0] for ddl in DDL)
REGISTRY_COLUMNS = ("topic_id", "status", "born_at", "born_run", "born_event", "parent_id", "retired_at",
                    "retired_run", "merged_into", "auto_label", "size", "last_run", "label", "hidden",
                    "pinned", "curated_into")


def now_at(config: MinerConfig) -> datetime:
    return datetime.now(ZoneInfo(config.timezone))


@contextmanager
def transaction(config: MinerConfig) -> Iterator:
    """A DuckDB connection inside ``BEGIN … COMMIT`` (rolled back on any error); tables exist."""
    with Store(config.db_path).connect() as con:
        present = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name IN "
                              f"({', '.join('?' * len(REGISTRY_TABLES))})", list(REGISTRY_TABLES)).fetchone()[0]
        if present < len(REGISTRY_TABLES):       # one query instead of every DDL on each transaction
            for ddl in DDL:
                con.execute(ddl)
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


def _select(con, name: str) -> pd.DataFrame:
    order = " ORDER BY topic_id" if name == "topic_registry" else ""
    return con.execute(f"SELECT * FROM {name}{order}").df()


def read_table(config: MinerConfig, name: str) -> pd.DataFrame:
    """A registry table as a DataFrame (empty with the right columns when nothing is stored yet)."""
    return read_tables(config, name)[0]


def read_tables(config: MinerConfig, *names: str) -> tuple[pd.DataFrame, ...]:
    """Several registry tables in one transaction (``topic_registry`` ordered by id), so a daily
    update does not pay a connection per table."""
    with transaction(config) as con:
        return tuple(_select(con, name) for name in names)


def registry_frame(config: MinerConfig) -> pd.DataFrame:
    """``topic_registry``, one row per permanent id, ordered by id."""
    return read_table(config, "topic_registry")


def next_topic_id(con) -> int:
    """The first id never issued (ids are never reused, even after retirement)."""
    row = con.execute("SELECT max(topic_id) FROM topic_registry").fetchone()
    return 0 if row[0] is None else int(row[0]) + 1


def next_free_id(config: MinerConfig) -> int:
    with transaction(config) as con:
        return next_topic_id(con)


def emerging_state(config: MinerConfig) -> tuple[pd.DataFrame, int]:
    """(``emerging_candidates``, the first id never issued), read in one transaction."""
    with transaction(config) as con:
        return _select(con, "emerging_candidates"), next_topic_id(con)


def applied_runs(config: MinerConfig) -> set[str]:
    with transaction(config) as con:
        return {r[0] for r in con.execute("SELECT run_id FROM registry_runs").fetchall()}


# --------------------------------------------------------------------------- applying a run

def apply_delta(config: MinerConfig, delta: dict) -> bool:
    """Apply one run's registry delta in one transaction; False when it was applied before.

    ``delta``: ``run_id``, ``kind``, ``at`` (ISO time), ``events`` (dicts of
    :class:`miner.topics.matching.LineageEvent` fields), ``topics`` (active raw topics of the run:
    ``topic_id``, ``auto_label``, ``size``, ``born_event``, ``parent_id``), optional
    ``candidates`` (the full new list of emerging candidates).
    """
    run_id, at = delta["run_id"], pd.Timestamp(delta["at"])
    with transaction(config) as con:
        if con.execute("SELECT 1 FROM registry_runs WHERE run_id = ?", [run_id]).fetchone():
            return False
        for e in delta.get("events", []):
            con.execute("INSERT INTO topic_lineage VALUES (?, ?, ?, ?, ?, ?)",
                        [run_id, at, e["event"], int(e["topic_id"]), e.get("related_id"), e.get("similarity")])
        topics = delta.get("topics", [])
        known = {r[0] for r in con.execute("SELECT topic_id FROM topic_registry").fetchall()}
        continued = [t for t in topics if int(t["topic_id"]) in known]
        seen = pd.DataFrame({"topic_id": [int(t["topic_id"]) for t in continued],
                             "auto_label": [t["auto_label"] for t in continued],
                             "size": [int(t["size"]) for t in continued]},
                            ).astype({"topic_id": "int64", "size": "int64", "auto_label": "object"})
        if len(seen):                             # one statement for every continued topic
            con.register("delta_topics", seen)
            con.execute("""UPDATE topic_registry SET status = ?, auto_label = d.auto_label, size = d.size,
                           last_run = ?, retired_at = NULL, retired_run = NULL, merged_into = NULL
                           FROM delta_topics d WHERE topic_registry.topic_id = d.topic_id""", [ACTIVE, run_id])
            con.unregister("delta_topics")
        for t in topics:
            tid = int(t["topic_id"])
            if tid in known:
                continue
            parent = t.get("parent_id")
            inherited = (con.execute("SELECT hidden, curated_into FROM topic_registry WHERE topic_id = ?",
                                     [parent]).fetchone() if parent is not None else None) or (False, None)
            con.execute("""INSERT INTO topic_registry (topic_id, status, born_at, born_run, born_event, parent_id,
                           auto_label, size, last_run, hidden, pinned, curated_into)
                           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, FALSE, ?)""",
                        [tid, ACTIVE, at, run_id, t.get("born_event", "born"), parent, t["auto_label"],
                         int(t["size"]), run_id, bool(inherited[0]), inherited[1]])
        for e in delta.get("events", []):
            if e["event"] in ("merged", "retired"):
                status = MERGED_STATUS if e["event"] == "merged" else RETIRED_STATUS
                con.execute("""UPDATE topic_registry SET status = ?, retired_at = ?, retired_run = ?,
                               merged_into = ? WHERE topic_id = ?""",
                            [status, at, run_id, e.get("related_id"), int(e["topic_id"])])
        if "candidates" in delta:
            con.execute("DELETE FROM emerging_candidates")
            for c in delta["candidates"]:
                con.execute("INSERT INTO emerging_candidates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            [c["candidate_id"], [float(x) for x in c["centroid"]], c["first_run"],
                             c["first_day"], c["last_run"], c["last_day"], int(c["seen"]), int(c["size"]),
                             [str(n) for n in c.get("note_ids", [])]])
        con.execute("INSERT INTO registry_runs VALUES (?, ?, ?)", [run_id, delta.get("kind"), now_at(config)])
    return True


def sync_registry(config: MinerConfig, snapshot=None) -> bool:
    """Apply the serving snapshot's delta if a crash kept it from being applied; True if it did."""
    from miner.topics.snapshot import latest_run_id, load_snapshot
    if snapshot is None:
        if latest_run_id(config) is None:
            return False
        snapshot = load_snapshot(config)
    delta = snapshot.meta.get("registry", {}).get("delta")
    if not delta:
        return False
    return apply_delta(config, delta)


def verify_registry(config: MinerConfig, snapshot=None) -> list[str]:
    """Problems between the registry and the serving snapshot (empty list = consistent)."""
    from miner.topics.snapshot import latest_run_id, load_snapshot
    problems: list[str] = []
    if snapshot is None and latest_run_id(config) is None:
        return problems
    snapshot = snapshot or load_snapshot(config)
    reg = registry_frame(config).set_index("topic_id")
    if snapshot.run_id not in applied_runs(config) and snapshot.meta.get("registry"):
        problems.append(f"serving snapshot {snapshot.run_id} is not applied to the registry")
    raw = snapshot.assignments.get(schema.RAW_TOPIC_ID, snapshot.assignments[schema.TOPIC_ID])
    for tid in sorted(set(int(t) for t in raw if t >= 0) | set(int(t) for t in snapshot.topics["topic_id"])):
        if tid not in reg.index:
            problems.append(f"topic {tid} of snapshot {snapshot.run_id} is missing from topic_registry")
    for tid in sorted(set(int(t) for t in raw if t >= 0)):
        if tid in reg.index and reg.at[tid, "status"] != ACTIVE:
            problems.append(f"topic {tid} is in snapshot {snapshot.run_id} but {reg.at[tid, 'status']} in the registry")
    if reg.index.has_duplicates:
        problems.append("topic_registry has duplicate ids")
    return problems


# --------------------------------------------------------------------------- history for the app

def topic_history(config: MinerConfig, topic_id: int) -> pd.DataFrame:
    """Everything that happened to one topic, oldest first: lineage events (as topic or as the
    related id: merged from, split into) and curation actions, with ``at``, ``kind``
    (``lineage`` / ``curation``), ``event``, ``actor``, ``detail``."""
    tid = int(topic_id)
    with transaction(config) as con:
        lineage = con.execute("""SELECT event_at AS "at", run_id, event, topic_id, related_id FROM topic_lineage
                                 WHERE (topic_id = ? OR related_id = ?) AND event <> 'continued'
                                 ORDER BY event_at""", [tid, tid]).df()
        audit = con.execute("SELECT acted_at AS \"at\", actor, action, topic_id, before_json, after_json "
                            "FROM topic_audit ORDER BY audit_id").df()
    audit = audit[[tid == r.topic_id or tid in _mentioned(r.before_json) | _mentioned(r.after_json)
                   for r in audit.itertuples()]]
    rows = []
    for r in lineage.itertuples():
        if r.topic_id == tid:
            detail = {"born": "诞生", "split": f"从话题 #{r.related_id} 拆分而来",
                      "merged": f"并入话题 #{r.related_id}", "retired": "消退（重建后不再出现）"}.get(r.event, r.event)
        else:
            detail = f"合并自话题 #{r.topic_id}" if r.event == "merged" else f"拆分出话题 #{r.topic_id}"
        rows.append({"at": r.at, "kind": "lineage", "event": r.event, "actor": None, "detail": detail})
    for r in audit.itertuples():
        rows.append({"at": r.at, "kind": "curation", "event": r.action, "actor": r.actor,
                     "detail": f"{r.before_json} → {r.after_json}"})
    out = pd.DataFrame(rows, columns=["at", "kind", "event", "actor", "detail"])
    return out.sort_values("at", kind="stable").reset_index(drop=True)


def _mentioned(text) -> set[int]:
    """Topic ids an audit JSON cell names (``topic_id``, ``parent_id``, ``merged``), at any depth."""
    found: set[int] = set()

    def walk(obj):
        if isinstance(obj, list):
            for item in obj:
                walk(item)
        elif isinstance(obj, dict):
            for key, value in obj.items():
                if key in ("topic_id", "parent_id") and isinstance(value, int):
                    found.add(value)
                elif key == "merged" and isinstance(value, list):
                    found.update(v for v in value if isinstance(v, int))
                else:
                    walk(value)
    walk(json.loads(text) if isinstance(text, str) and text else None)
    return found


def topic_flags(config: MinerConfig, new_within_days: int = 7, as_of=None) -> pd.DataFrame:
    """Per permanent id: ``is_new`` (新话题: born within ``new_within_days`` of ``as_of``, default now,
    and still active), ``is_retired`` (消退: retired or merged away), ``born_at``, ``status``,
    ``hidden``, ``pinned``, ``label``."""
    reg = registry_frame(config)
    as_of = pd.Timestamp(as_of) if as_of is not None else pd.Timestamp(now_at(config))
    if as_of.tzinfo is None:
        as_of = as_of.tz_localize(config.timezone)
    born = pd.to_datetime(reg["born_at"], utc=True)
    reg["is_new"] = (reg["status"] == ACTIVE) & (born >= as_of - pd.Timedelta(days=new_within_days))
    reg["is_retired"] = reg["status"] != ACTIVE
    return reg[["topic_id", "status", "born_at", "is_new", "is_retired", "hidden", "pinned", "label",
                "auto_label", "curated_into"]]


def lineage_events(config: MinerConfig, run_id: str | None = None) -> pd.DataFrame:
    with transaction(config) as con:
        if run_id is None:
            return con.execute("SELECT * FROM topic_lineage ORDER BY event_at").df()
        return con.execute("SELECT * FROM topic_lineage WHERE run_id = ?", [run_id]).df()


def audit_log(config: MinerConfig, topic_id: int | None = None) -> pd.DataFrame:
    """The curation audit trail, newest first (optionally one topic's)."""
    with transaction(config) as con:
        if topic_id is None:
            return con.execute("SELECT * FROM topic_audit ORDER BY audit_id DESC").df()
        return con.execute("SELECT * FROM topic_audit WHERE topic_id = ? ORDER BY audit_id DESC",
                           [int(topic_id)]).df()


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str, sort_keys=True)
