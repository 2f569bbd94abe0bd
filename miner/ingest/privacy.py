"""User-id hashing and the salt it uses.

Columns listed in ``schema.hashed_ids`` are replaced by ``sha256(salt + raw_id)`` (first 16 hex
digits) before anything is written. The salt is, in order:

1. ``config.id_salt`` when set (``MINER_ID_SALT``), unless it is the public demo salt;
2. otherwise the workspace's own random salt, ``<workspace_dir>/id_salt``: 32 random bytes (hex)
   created on first use with owner-only permissions (0600), written atomically so concurrent
   first ingests agree on one salt. Keep the file with the workspace: without it, new hashes no
   longer match the stored ones.

The public demo salt (:data:`miner.config.PUBLIC_DEMO_SALT`) is only used when the caller says the
workspace is the demo (``allow_public_salt=True``); anywhere else it is refused, because anyone
can recompute hashes made with it (60 phone numbers were recovered in 1.8 s).
"""
from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from miner.config import PUBLIC_DEMO_SALT, SALT_FILE, MinerConfig
from miner.ingest.parse import as_text, series

__all__ = ["HASH_HEX_CHARS", "hash_ids", "resolve_id_salt", "workspace_salt"]

HASH_HEX_CHARS = 16            # 64 bits of the salted sha256
_SALT_BYTES = 32
_SALT_RE = re.compile(r"^[0-9a-f]{64}$")


def workspace_salt(workspace_dir: str | os.PathLike, create: bool = True) -> str:
    """The workspace's random salt, created (0600, atomically) on first use when ``create``."""
    path = Path(workspace_dir) / SALT_FILE
    if not path.exists():
        if not create:
            raise FileNotFoundError(f"{path}: no workspace salt yet")
        _create_salt(path)
    text = path.read_text(encoding="ascii").strip()
    if not _SALT_RE.match(text):
        raise ValueError(
            f"{path}: 工作区盐值文件损坏 the workspace salt file is damaged (expected 64 hex digits). "
            "Restore it from a backup; a new salt would make new user-id hashes differ from the stored ones"
        )
    return text


def _create_salt(path: Path) -> None:
    """Write a new salt to a private temp file, then hard-link it into place (fails if one exists)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_hex(_SALT_BYTES) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)           # in case a umask or ACL widened it
        try:
            os.link(tmp, path)         # atomic create-if-absent: a concurrent first use keeps its salt
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)


def resolve_id_salt(config: MinerConfig, allow_public_salt: bool = False) -> str:
    """The salt ingest hashes user ids with (see the module docstring).

    Parameters
    ----------
    config : ``id_salt`` (explicit salt or None) and ``workspace_dir`` (where the random salt lives).
    allow_public_salt : True only for the demo workspace (its user ids are simulated): the public
        demo salt is then used when no salt is configured, and accepted when configured.

    Raises
    ------
    ValueError
        The configured salt is the public demo salt and the workspace is not the demo.
    """
    configured = config.id_salt or None
    if configured == PUBLIC_DEMO_SALT and not allow_public_salt:
        raise ValueError(
            f"拒绝使用公开盐值 refusing the public demo salt {PUBLIC_DEMO_SALT!r} for real user ids: anyone can "
            "recompute these hashes. Unset MINER_ID_SALT (each workspace then gets its own random salt in "
            f"{config.salt_path}) or set it to a long random secret"
        )
    if configured is not None:
        return configured
    if allow_public_salt:
        return PUBLIC_DEMO_SALT
    return workspace_salt(config.workspace_dir)


def hash_ids(values: pd.Series, salt: str) -> pd.Series:
    """``sha256(salt + id)`` as lowercase hex, first 16 digits, of each trimmed id; empty stays missing.

    Same digest as ``hashlib.sha256((salt + id).encode("utf-8")).hexdigest()[:16]``, computed by
    DuckDB's vectorised ``sha256`` (about 20× faster than a Python loop on millions of ids).
    """
    if not isinstance(salt, str):
        raise TypeError("hash_ids needs the salt as a string; see miner.ingest.resolve_id_salt(config)")
    arr, _ = as_text(values)
    with duckdb.connect() as con:          # in-memory: no workspace lock involved
        ids = pa.table({"id": arr})   # noqa: F841 (read by the query below)
        hashed = con.execute(
            f"SELECT left(sha256(? || id), {HASH_HEX_CHARS}) AS h FROM ids", [salt]
        ).fetch_arrow_table().column("h")
    return series(hashed.combine_chunks(), values.index)
