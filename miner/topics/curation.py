"""Curation: rename, merge, split, hide and pin topics, with an audit trail, replayed on every run.

Curation state lives in the registry, keyed by permanent id (``label``, ``hidden``, ``pinned``,
``curated_into``, and split rules in ``topic_splits``); the model's own assignment of a note is its
*raw* topic. Every snapshot (build, update, or a refresh after an action) derives what it shows
from the raw topics by :func:`curated_ids`: follow ``curated_into`` (hand merges), then apply the
split rules in order. Because a rebuild keeps permanent ids through lineage, the same state
replays onto it: a renamed topic keeps its name, a merge stays merged, a hidden topic stays hidden.

Every action runs in one registry transaction that also writes its ``topic_audit`` row (who,
when, action, before/after as JSON), then writes a refreshed snapshot (``latest`` moves atomically).
"""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from miner import schema
from miner.config import MinerConfig
from miner.topics import registry as reg_db
from miner.topics.registry import dumps, transaction

CURATED_FIELDS = ("label", "hidden", "pinned", "curated_into")


# --------------------------------------------------------------------------- the overlay

def _resolve(start: int, into: dict[int, int]) -> int:
    seen, tid = set(), start
    while tid in into and tid not in seen:      # a cycle (A→B→A) stops at the first repeat
        seen.add(tid)
        tid = into[tid]
    return tid


def curated_ids(raw_ids, registry: pd.DataFrame, splits: pd.DataFrame, notes: pd.DataFrame,
                tokens=None) -> np.ndarray:
    """Shown topic of each note: raw id → hand merges (``curated_into``) → split rules.

    ``notes`` row i ↔ ``raw_ids[i]``; split rules match a keyword (a token of the note, or a
    substring of its title/body) or list note ids. ``tokens`` (a build's
    :class:`~miner.topics.tokens.TokenTable`) stands in for a ``tokens`` column.
    """
    raw = np.asarray(raw_ids, dtype=np.int64)
    into = {int(t): int(c) for t, c in zip(registry["topic_id"], registry["curated_into"]) if pd.notna(c)}
    lookup = {t: _resolve(t, into) for t in set(raw.tolist()) if t >= 0}
    out = np.array([lookup.get(int(t), int(t)) for t in raw], dtype=np.int64)
    if len(splits) == 0:
        return out
    if tokens is None:
        tokens = notes["tokens"] if "tokens" in notes else pd.Series([[]] * len(notes))
    text = notes[schema.TITLE].fillna("").astype(str) + " " + notes[schema.BODY].fillna("").astype(str)
    note_ids = notes[schema.NOTE_ID].astype(str)
    for rule in splits.sort_values("rule_id").itertuples():
        source = _resolve(int(rule.source_id), into)
        if isinstance(rule.keyword, str) and rule.keyword:
            kw = rule.keyword
            hit = np.array([kw in schema.list_cell(t) for t in tokens]) | text.str.contains(kw, regex=False).to_numpy()
        else:
            hit = note_ids.isin([str(n) for n in schema.list_cell(rule.note_ids)]).to_numpy()
        out[(out == source) & hit] = int(rule.target_id)
    return out


def pending_registry(registry: pd.DataFrame, new_topics: list[dict], born_at=None) -> pd.DataFrame:
    """The registry as it will be once ``new_topics`` are added (split children inherit their
    parent's ``hidden`` and ``curated_into``, as :func:`miner.topics.registry.apply_delta` does)."""
    known = set(registry["topic_id"].astype(int))
    by_id = registry.set_index("topic_id")
    rows = []
    for t in new_topics:
        if int(t["topic_id"]) in known:
            continue
        parent = t.get("parent_id")
        has_parent = parent is not None and parent in by_id.index
        rows.append({"topic_id": int(t["topic_id"]), "status": reg_db.ACTIVE, "label": None, "pinned": False,
                     "hidden": bool(by_id.at[parent, "hidden"]) if has_parent else False,
                     "curated_into": by_id.at[parent, "curated_into"] if has_parent else None,
                     "born_at": born_at})
    if not rows:
        return registry
    extra = pd.DataFrame(rows)
    return pd.concat([registry.astype({"curated_into": "float64"}), extra], ignore_index=True) if len(registry) else extra


LABEL_FIELDS = ("auto_label", "keywords", "keyword_scores", "representative_note_ids", "coherence", "is_mixed")
RELABEL_SIZE_CHANGE = 0.1   # an update relabels a topic whose size moved by more than this share


def topic_tables(config: MinerConfig, notes: pd.DataFrame, embeddings: np.ndarray, raw_ids, scores,
                 registry: pd.DataFrame, splits: pd.DataFrame, embedder=None, keep_labels: pd.DataFrame | None = None,
                 tokens=None):
    """(topics, assignments, centroids) of a snapshot from raw topics and the curation state.

    Topics rows are in ascending ``topic_id`` order; ``centroids`` row i ↔ topics row i.
    ``keep_labels`` (an update: the serving snapshot's topics): a topic in it whose size moved by
    at most ``RELABEL_SIZE_CHANGE`` keeps its automatic label, keywords and representative notes,
    so daily updates do not rename topics over a few notes (a rebuild relabels every topic).
    ``tokens``: a build's :class:`~miner.topics.tokens.TokenTable`, used instead of a ``tokens`` column.
    """
    from miner.topics.embed import EmbeddingCache
    from miner.topics.label import TopicLabeler
    from miner.topics.pipeline import topic_centroids

    raw = np.asarray(raw_ids, dtype=np.int64)
    shown = curated_ids(raw, registry, splits, notes, tokens)
    tids = np.array(sorted({int(t) for t in shown if t >= 0}), dtype=np.int64)
    pos = np.where(shown >= 0, np.searchsorted(tids, np.maximum(shown, 0)), -1)
    centroids = topic_centroids(embeddings, pos, len(tids))
    tags = notes[schema.TAGS] if schema.TAGS in notes else None      # read per topic, not copied
    cache = EmbeddingCache(config.embedding_cache_dir) if embedder is not None else None
    sizes = np.bincount(pos[pos >= 0], minlength=len(tids)).astype(int)
    kept = _unchanged_labels(keep_labels, tids, sizes)
    token_lists = tokens if tokens is not None else [
        t if isinstance(t, list) else schema.list_cell(t) for t in notes["tokens"]]   # lists shared, not copied
    labeler = TopicLabeler(config.n_keywords, config.n_representatives, embedder=embedder, word_cache=cache).fit(
        token_lists, pos, embeddings, centroids, tags=tags,
        only=[i for i, t in enumerate(tids) if int(t) not in kept])
    state = registry.set_index("topic_id") if len(registry) else pd.DataFrame(columns=CURATED_FIELDS)
    note_ids = schema.note_id_column(notes)

    def field(tid, name, default):
        if tid in state.index and pd.notna(state.at[tid, name]):
            return state.at[tid, name]
        return default

    labels = [kept.get(int(t)) or {
        "auto_label": lab.label, "keywords": lab.keywords, "keyword_scores": lab.keyword_scores,
        "representative_note_ids": [str(i) for i in note_ids.iloc[list(lab.representative_rows)]],
        "coherence": lab.coherence, "is_mixed": lab.is_mixed} for t, lab in zip(tids, labeler.topics_)]
    topics = pd.DataFrame({
        schema.TOPIC_ID: tids,
        "label": [str(field(int(t), "label", lab["auto_label"])) for t, lab in zip(tids, labels)],
        **{name: [lab[name] for lab in labels] for name in LABEL_FIELDS[:3]},
        "size": sizes,
        **{name: [lab[name] for lab in labels] for name in LABEL_FIELDS[3:]},
        "hidden": [bool(field(int(t), "hidden", False)) for t in tids],
        "pinned": [bool(field(int(t), "pinned", False)) for t in tids],
        "born_at": [field(int(t), "born_at", None) for t in tids],
    })
    topics["born_at"] = pd.to_datetime(topics["born_at"], utc=True).dt.tz_convert(config.timezone)
    assignments = pd.DataFrame({schema.NOTE_ID: note_ids.array, schema.TOPIC_ID: shown,
                                schema.SCORE: np.asarray(scores, dtype=np.float32), schema.RAW_TOPIC_ID: raw})
    return topics, assignments, centroids


def _unchanged_labels(previous: pd.DataFrame | None, tids: np.ndarray, sizes: np.ndarray) -> dict[int, dict]:
    """{topic id: its previous label fields} for topics whose size moved by ≤ RELABEL_SIZE_CHANGE."""
    if previous is None or previous.empty or not set(LABEL_FIELDS) <= set(previous.columns):
        return {}
    before = previous.set_index(schema.TOPIC_ID)
    out = {}
    for tid, size in zip(tids, sizes):
        tid = int(tid)
        if tid in before.index and abs(size - before.at[tid, "size"]) <= RELABEL_SIZE_CHANGE * before.at[tid, "size"]:
            row = before.loc[tid]
            out[tid] = {name: (schema.list_cell(row[name]) if name in ("keywords", "keyword_scores",
                                                                        "representative_note_ids") else row[name])
                        for name in LABEL_FIELDS}
    return out


# --------------------------------------------------------------------------- actions

def _check_actor(actor) -> str:
    if not isinstance(actor, str) or not actor.strip():
        raise ValueError("curation needs an actor: the signed-in user or a configured name (actor='…')")
    return actor.strip()


def _row(con, topic_id: int) -> dict:
    row = con.execute(f"SELECT topic_id, status, {', '.join(CURATED_FIELDS)} FROM topic_registry "
                      "WHERE topic_id = ?", [int(topic_id)]).fetchone()
    if row is None:
        raise KeyError(f"topic {topic_id} is not in the topic registry; pick a topic of the current snapshot")
    out = dict(zip(("topic_id", "status", *CURATED_FIELDS), row))
    if out["curated_into"] is not None:
        out["curated_into"] = int(out["curated_into"])
    return out


def _audit(con, actor: str, action: str, topic_id: int | None, before, after) -> int:
    audit_id = int(con.execute("SELECT coalesce(max(audit_id), 0) + 1 FROM topic_audit").fetchone()[0])
    con.execute("INSERT INTO topic_audit VALUES (?, ?, ?, ?, ?, ?, ?)",
                [audit_id, datetime.now(ZoneInfo("Asia/Shanghai")), actor, action, topic_id,
                 dumps(before), dumps(after)])
    return audit_id


def _set(config: MinerConfig, actor: str, action: str, topic_id: int, refresh: bool, **values) -> dict:
    actor = _check_actor(actor)
    with transaction(config) as con:
        before = _row(con, topic_id)
        sets = ", ".join(f"{k} = ?" for k in values)
        con.execute(f"UPDATE topic_registry SET {sets} WHERE topic_id = ?", [*values.values(), int(topic_id)])
        after = _row(con, topic_id)
        _audit(con, actor, action, int(topic_id), before, after)
    if refresh:
        refresh_snapshot(config)
    return after


def rename_topic(config: MinerConfig, topic_id: int, name: str, actor: str, refresh: bool = True) -> dict:
    """Give a topic a planner's name (``None`` or ``""`` goes back to the automatic label)."""
    name = (name or "").strip() or None
    return _set(config, actor, "rename", topic_id, refresh, label=name)


def hide_topic(config: MinerConfig, topic_id: int, actor: str, hidden: bool = True, refresh: bool = True) -> dict:
    return _set(config, actor, "hide" if hidden else "unhide", topic_id, refresh, hidden=bool(hidden))


def pin_topic(config: MinerConfig, topic_id: int, actor: str, pinned: bool = True, refresh: bool = True) -> dict:
    return _set(config, actor, "pin" if pinned else "unpin", topic_id, refresh, pinned=bool(pinned))


def merge_topics(config: MinerConfig, source_ids, target_id: int, actor: str, refresh: bool = True) -> dict:
    """Show ``source_ids`` as part of ``target_id`` from now on (and after every rebuild)."""
    actor = _check_actor(actor)
    sources = sorted({int(s) for s in source_ids} - {int(target_id)})
    if not sources:
        raise ValueError(f"merge needs at least one topic other than the target {target_id}")
    with transaction(config) as con:
        target = _row(con, target_id)
        if target["curated_into"] is not None:
            raise ValueError(f"topic {target_id} is itself merged into {target['curated_into']}; merge into that")
        before = [_row(con, s) for s in sources]
        con.execute(f"UPDATE topic_registry SET curated_into = ? WHERE topic_id IN ({', '.join('?' * len(sources))})",
                    [int(target_id), *sources])
        con.execute(f"UPDATE topic_registry SET curated_into = ? WHERE curated_into IN ({', '.join('?' * len(sources))})",
                    [int(target_id), *sources])
        after = {"topic_id": int(target_id), "merged": sources}
        _audit(con, actor, "merge", int(target_id), before, after)
    if refresh:
        refresh_snapshot(config)
    return after


def split_topic(config: MinerConfig, topic_id: int, actor: str, keyword: str | None = None,
                note_ids=None, name: str | None = None, refresh: bool = True) -> int:
    """Move the notes of ``topic_id`` matching ``keyword`` (a token or a substring of title/body), or
    the chosen ``note_ids``, into a new topic; returns its permanent id. The rule is kept and
    re-applied on every later update and rebuild (a note-id split moves exactly those notes)."""
    actor = _check_actor(actor)
    if bool(keyword) == bool(note_ids):
        raise ValueError("split by a keyword or by chosen note ids: give exactly one of keyword=, note_ids=")
    chosen = [str(n) for n in note_ids] if note_ids else None
    at = datetime.now(ZoneInfo(config.timezone))
    with transaction(config) as con:
        source = _row(con, topic_id)
        new_id = reg_db.next_topic_id(con)
        con.execute("""INSERT INTO topic_registry (topic_id, status, born_at, born_run, born_event, parent_id,
                       label, hidden, pinned) VALUES (?, ?, ?, NULL, 'curated_split', ?, ?, ?, FALSE)""",
                    [new_id, reg_db.ACTIVE, at, int(topic_id), (name or "").strip() or None, bool(source["hidden"])])
        rule_id = int(con.execute("SELECT coalesce(max(rule_id), 0) + 1 FROM topic_splits").fetchone()[0])
        con.execute("INSERT INTO topic_splits VALUES (?, ?, ?, ?, ?, ?)",
                    [rule_id, int(topic_id), new_id, keyword or None, chosen, at])
        con.execute("INSERT INTO topic_lineage VALUES ('curation', ?, 'split', ?, ?, NULL)", [at, new_id, int(topic_id)])
        after = {"topic_id": new_id, "parent_id": int(topic_id), "keyword": keyword, "note_ids": chosen, "label": name}
        _audit(con, actor, "split", int(topic_id), source, after)
    if refresh:
        refresh_snapshot(config)
    return new_id


def refresh_snapshot(config: MinerConfig) -> str:
    """Write a new snapshot of the serving one with the current curation applied; returns its run id."""
    from miner.topics.update import rewrite_snapshot
    return rewrite_snapshot(config)
