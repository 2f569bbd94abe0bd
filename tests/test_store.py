"""miner.store: a workspace locked by another process gives WorkspaceBusyError after a short retry."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import duckdb
import pandas as pd
import pytest

from miner.config import MinerConfig
from miner.errors import MinerError
from miner.ingest import ingest_file
from miner.schema import NOTES
from miner.store import Store, WorkspaceBusyError

HOLDER = textwrap.dedent("""
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    con.execute("CREATE TABLE IF NOT EXISTS held (x INTEGER)")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    con.close()
""")


@pytest.fixture
def hold_lock(tmp_path):
    """Start a process that holds a write connection to ``db`` for ``seconds``; yields a starter."""
    procs = []

    def start(db, seconds: float):
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), str(seconds)], stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_locked_workspace_raises_busy_after_retry(tmp_path, hold_lock):
    db = tmp_path / "miner.duckdb"
    hold_lock(db, 30)
    t0 = time.monotonic()
    with pytest.raises(WorkspaceBusyError, match="工作区正忙.*workspace busy, retry") as err:
        Store(db, busy_timeout_s=0.6).connect()
    waited = time.monotonic() - t0
    assert 0.5 <= waited < 5                      # it retried, briefly
    assert isinstance(err.value, MinerError) and err.value.path == str(db)
    assert "IOException" not in str(err.value) and str(db) in str(err.value)


def test_retry_succeeds_when_the_lock_is_released(tmp_path, hold_lock):
    db = tmp_path / "miner.duckdb"
    hold_lock(db, 0.8)
    with Store(db, busy_timeout_s=10).connect() as con:
        assert con.execute("SELECT count(*) FROM held").fetchone() == (0,)


def test_ingest_and_read_back_use_the_busy_error(tmp_path, hold_lock):
    config = MinerConfig(workspace_dir=tmp_path / "ws")
    path = tmp_path / "n.csv"
    pd.DataFrame({"title": ["露营装备"]}).to_csv(path, index=False)
    ingest_file(path, NOTES, config)
    hold_lock(config.db_path, 30)
    with pytest.raises(WorkspaceBusyError):
        ingest_file(path, NOTES, config, busy_timeout_s=0.3)
    with pytest.raises(WorkspaceBusyError):
        Store(config.db_path, read_only=True, busy_timeout_s=0.3).has_table("notes")


def test_other_io_errors_are_not_hidden(tmp_path):
    bad = tmp_path / "not-a-db.duckdb"
    bad.write_bytes(b"this is not a duckdb file" * 100)
    with pytest.raises(duckdb.Error) as err:
        Store(bad, busy_timeout_s=0.2).connect()
    assert not isinstance(err.value, WorkspaceBusyError)


def test_read_only_store_needs_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no workspace database"):
        Store(tmp_path / "none.duckdb", read_only=True).connect()
    assert Store(tmp_path / "none.duckdb").has_table("notes") is False
    assert Store(tmp_path / "none.duckdb").columns("notes") == []
