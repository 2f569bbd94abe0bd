"""Upload temp folders: ``<workspace>/uploads/upload-*`` hold raw uploaded files (raw user ids)
only while one ingest runs; :func:`clean_stale_uploads` removes those a crash or kill left behind."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

__all__ = ["UPLOADS_DIR", "UPLOAD_PREFIX", "clean_stale_uploads"]

UPLOADS_DIR = "uploads"
UPLOAD_PREFIX = "upload-"
STALE_AFTER_S = 3600.0        # an ingest running longer than an hour on one upload is not expected


def _newest_mtime(folder: Path) -> float:
    newest = folder.lstat().st_mtime
    for entry in os.scandir(folder):
        newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
    return newest


def clean_stale_uploads(workspace_dir: str | os.PathLike, older_than_s: float = STALE_AFTER_S,
                        now: float | None = None) -> list[Path]:
    """Delete ``uploads/upload-*`` folders whose newest entry is older than ``older_than_s`` seconds.

    Only real folders directly under ``<workspace_dir>/uploads`` whose name starts with ``upload-``
    are touched (symlinks are skipped, never followed). Returns the folders removed. Safe to call at
    every start: a folder of an ingest still running is younger than the threshold.
    """
    root = Path(workspace_dir) / UPLOADS_DIR
    if not root.is_dir():
        return []
    now = time.time() if now is None else now
    removed = []
    for entry in sorted(root.iterdir()):
        if not entry.name.startswith(UPLOAD_PREFIX) or entry.is_symlink() or not entry.is_dir():
            continue
        try:
            if now - _newest_mtime(entry) < older_than_s:
                continue
            shutil.rmtree(entry)
        except FileNotFoundError:      # removed meanwhile by its own ingest
            continue
        removed.append(entry)
    return removed
