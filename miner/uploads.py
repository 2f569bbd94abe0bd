"""Uploaded files: safe names and the private temp folders they pass through.

An upload is written under ``<workspace>/uploads/upload-*/`` only while it is ingested; the folder
is removed on every path, and folders left by a killed process are removed at the next start.
"""
from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

UPLOADS_DIR = "uploads"
UPLOAD_PREFIX = "upload-"
MAX_NAME_BYTES = 120              # well under the 255-byte limit of common file systems
_UNSAFE = re.compile(r"[^\w.\-]+")


def safe_filename(name: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """The uploaded name without folders or odd characters (CJK letters kept), at most ``max_bytes``
    bytes in UTF-8, with its extension(s) kept (``notes.csv.gz`` stays ``….csv.gz``)."""
    base = _UNSAFE.sub("_", Path(str(name).replace("\\", "/")).name).strip("._") or "upload.csv"
    suffixes = "".join(Path(base).suffixes[-2:])
    if len(suffixes.encode("utf-8")) > 16:         # a "suffix" that long is part of the name
        suffixes = Path(base).suffix if len(Path(base).suffix.encode("utf-8")) <= 16 else ""
    stem = base[: len(base) - len(suffixes)] if suffixes else base
    budget = max_bytes - len(suffixes.encode("utf-8"))
    encoded = stem.encode("utf-8")[:budget]
    stem = encoded.decode("utf-8", errors="ignore").rstrip("._") or "upload"
    return stem + suffixes


def uploads_root(workspace_dir) -> Path:
    return Path(workspace_dir) / UPLOADS_DIR


def remove_stale_uploads(workspace_dir, older_than_s: float = 3600) -> list[str]:
    """Delete upload folders older than ``older_than_s`` (left by a crash); returns their names."""
    root = uploads_root(workspace_dir)
    removed: list[str] = []
    if not root.exists():
        return removed
    cutoff = time.time() - older_than_s
    for path in root.glob(f"{UPLOAD_PREFIX}*"):
        try:
            if path.stat().st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.name)
        except OSError:
            continue
    return removed
