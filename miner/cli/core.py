"""CLI: ingest, build, topics, predict."""
from __future__ import annotations

from pathlib import Path

from miner.config import REPO_ROOT, MinerConfig

DEMO_NOTES = REPO_ROOT / "data" / "demo" / "notes.parquet"


def register(sub) -> None:
    p = sub.add_parser("ingest", help="导入数据 ingest a notes/engagements/audience/orders file")
    p.add_argument("files", nargs="+", help="CSV, JSONL, Parquet or Excel files")
    p.add_argument("--table", default="notes",
                   choices=["notes", "engagements", "audience", "aips_stages", "orders", "spend"])
    p.add_argument("--replace", action="store_true", help="replace the table instead of upserting")
    p.set_defaults(handler=cmd_ingest)

    p = sub.add_parser("build", help="构建话题 mine topics and write a snapshot")
    p.add_argument("--input", help="ingest this notes file first")
    p.add_argument("--demo", action="store_true", help="use the bundled demo corpus (default when no notes yet)")
    p.add_argument("--n-topics", type=int, help="fix the number of topics (default: automatic)")
    p.add_argument("--outlier-share", type=float, help="share of notes marked as outliers (default 0.08)")
    p.add_argument("--model", help="sentence-transformers model name or path, or 'hashing'")
    p.add_argument("--seed", type=int)
    p.add_argument("--limit", type=int, help="use only the first N notes (quick trials)")
    p.set_defaults(handler=cmd_build)

    p = sub.add_parser("topics", help="查看话题 list the topics of a snapshot")
    p.add_argument("--run", help="snapshot run id (default latest)")
    p.add_argument("--top", type=int, default=30)
    p.set_defaults(handler=cmd_topics)

    p = sub.add_parser("predict", help="预测话题 assign new texts to topics")
    p.add_argument("texts", nargs="*", help="texts to classify")
    p.add_argument("--file", help="a notes file; predicts every row")
    p.add_argument("--run", help="snapshot run id (default latest)")
    p.set_defaults(handler=cmd_predict)


def cmd_ingest(args, config: MinerConfig) -> int:
    from miner.ingest import ingest_file
    from miner.schema import INPUT_SCHEMAS
    for f in args.files:
        report = ingest_file(f, INPUT_SCHEMAS[args.table], config, mode="replace" if args.replace else "upsert")
        print(report.summary())
    return 0


def ensure_notes(config: MinerConfig, input_path: str | None = None, demo: bool = False):
    """Notes to build from: ingest ``input_path`` or the demo corpus when asked or when none exist."""
    from miner.ingest import ingest_file, load_notes
    from miner.schema import NOTES
    from miner.store import Store
    if input_path:
        print(ingest_file(input_path, NOTES, config).summary())
    elif demo or not Store(config.db_path).has_table("notes"):
        if not DEMO_NOTES.exists():
            raise FileNotFoundError(f"demo corpus missing: {DEMO_NOTES}; run `python data/build_demo.py`")
        print(f"使用演示语料 using demo corpus {DEMO_NOTES.relative_to(DEMO_NOTES.parents[2])}")
        print(ingest_file(DEMO_NOTES, NOTES, config, mode="replace").summary())
    return load_notes(config)


def cmd_build(args, config: MinerConfig) -> int:
    from miner.topics.pipeline import build_topics
    config = config.with_overrides(n_topics=args.n_topics, outlier_share=args.outlier_share,
                                   embedding_model=args.model, seed=args.seed)
    notes = ensure_notes(config, args.input, args.demo)
    if args.limit:
        notes = notes.head(args.limit)
    result = build_topics(config, notes)
    print(result.summary())
    return 0


def cmd_topics(args, config: MinerConfig) -> int:
    from miner.topics.snapshot import load_snapshot
    snap = load_snapshot(config, args.run)
    topics = snap.topics.sort_values("size", ascending=False).head(args.top)
    n = len(snap.assignments)
    outliers = int((snap.assignments["topic_id"] < 0).sum())
    print(f"快照 snapshot {snap.run_id} · 模型 {snap.model_id} · {n} 篇笔记 · {len(snap.topics)} 个话题 · "
          f"离群 {outliers / max(n, 1):.1%}")
    for row in topics.itertuples():
        print(f"[{row.topic_id:>3}] {row.label:<16} {row.size:>5} 篇  关键词: {' '.join(list(row.keywords)[:8])}")
    return 0


def cmd_predict(args, config: MinerConfig) -> int:
    from miner.topics.snapshot import load_snapshot
    from miner.topics.pipeline import notes_texts, predict_texts
    snap = load_snapshot(config, args.run)
    texts = list(args.texts)
    if args.file:
        from miner.ingest import read_table_file
        frame = read_table_file(args.file)
        texts += notes_texts(frame.fillna(""))
    if not texts:
        raise ValueError("give texts to classify, or --file")
    out = predict_texts(snap, texts)
    for row in out.itertuples():
        preview = row.text.replace("\n", " ")[:40]
        print(f"{row.topic_id:>4}  {row.label:<16} {row.score:.3f}  {preview}")
    return 0
