"""miner.ingest.privacy: per-workspace random salt, the public demo salt only for the demo."""
from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from miner.config import PUBLIC_DEMO_SALT, MinerConfig
from miner.ingest import hash_ids, ingest_file, load_table, resolve_id_salt, workspace_salt
from miner.schema import AUDIENCE, NOTES

PHONES = ["13800138000", "13912345678", "18611112222"]


def _audience_csv(tmp_path):
    path = tmp_path / "audience.csv"
    pd.DataFrame({"user_id": PHONES, "gender": "F", "age_band": "18-24", "city_tier": "1"}).to_csv(path, index=False)
    return path


def test_random_salt_created_private_and_reused(tmp_path):
    config = MinerConfig(workspace_dir=tmp_path / "ws")
    assert not config.salt_path.exists()
    salt = resolve_id_salt(config)
    assert len(salt) == 64 and int(salt, 16) >= 0 and salt != PUBLIC_DEMO_SALT
    assert stat.S_IMODE(config.salt_path.stat().st_mode) == 0o600
    assert resolve_id_salt(config) == salt == workspace_salt(config.workspace_dir)   # stable
    assert resolve_id_salt(MinerConfig(workspace_dir=tmp_path / "other")) != salt     # per workspace
    assert [p.name for p in config.workspace_dir.iterdir()] == ["id_salt"]          # no temp files left


def test_concurrent_first_use_keeps_the_winners_salt(tmp_path, monkeypatch):
    """Another process creates the salt between our temp write and our link: we adopt its salt."""
    winner = "ab" * 32
    real_link = os.link

    def racing_link(src, dst):
        Path(dst).write_text(winner + "\n")          # the other process got there first
        return real_link(src, dst)                    # → FileExistsError, handled

    monkeypatch.setattr(os, "link", racing_link)
    assert workspace_salt(tmp_path / "ws") == winner
    assert [p.name for p in (tmp_path / "ws").iterdir()] == ["id_salt"]   # our temp file is gone


def test_ingest_hashes_with_the_workspace_salt(tmp_path):
    config = MinerConfig(workspace_dir=tmp_path / "ws")
    ingest_file(_audience_csv(tmp_path), AUDIENCE, config)
    salt = config.salt_path.read_text().strip()
    expected = {hashlib.sha256((salt + p).encode()).hexdigest()[:16] for p in PHONES}
    assert set(load_table(config, "audience")["user_id"]) == expected
    public = {hashlib.sha256((PUBLIC_DEMO_SALT + p).encode()).hexdigest()[:16] for p in PHONES}
    assert not expected & public                 # the stored hashes cannot be recomputed from the repo


def test_public_salt_refused_for_real_ids(tmp_path):
    config = MinerConfig(workspace_dir=tmp_path / "ws", id_salt=PUBLIC_DEMO_SALT)
    with pytest.raises(ValueError, match="refusing the public demo salt"):
        ingest_file(_audience_csv(tmp_path), AUDIENCE, config)
    assert not config.db_path.exists()
    ingest_file(_audience_csv(tmp_path), AUDIENCE, config, allow_public_salt=True)     # the demo may
    expected = set(hash_ids(pd.Series(PHONES), PUBLIC_DEMO_SALT))
    assert set(load_table(config, "audience")["user_id"]) == expected


def test_demo_flag_uses_public_salt_only_when_none_configured(tmp_path):
    demo = MinerConfig(workspace_dir=tmp_path / "demo")
    assert resolve_id_salt(demo, allow_public_salt=True) == PUBLIC_DEMO_SALT
    assert not demo.salt_path.exists()
    own = MinerConfig(workspace_dir=tmp_path / "demo", id_salt="a-long-private-secret")
    assert resolve_id_salt(own, allow_public_salt=True) == "a-long-private-secret"
    assert resolve_id_salt(own) == "a-long-private-secret"


def test_env_salt_and_empty_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MINER_ID_SALT", "")
    assert MinerConfig.load().id_salt is None
    monkeypatch.setenv("MINER_ID_SALT", PUBLIC_DEMO_SALT)
    with pytest.raises(ValueError, match="public demo salt"):
        resolve_id_salt(MinerConfig.load().with_overrides(workspace_dir=tmp_path))


def test_damaged_salt_file_is_an_error_not_a_new_salt(tmp_path):
    config = MinerConfig(workspace_dir=tmp_path / "ws")
    config.workspace_dir.mkdir()
    config.salt_path.write_text("oops\n")
    with pytest.raises(ValueError, match="salt file is damaged"):
        resolve_id_salt(config)
    assert config.salt_path.read_text() == "oops\n"


def test_notes_ingest_does_not_create_a_salt(tmp_path):
    config = MinerConfig(workspace_dir=tmp_path / "ws")
    path = tmp_path / "n.csv"
    pd.DataFrame({"title": ["露营装备"]}).to_csv(path, index=False)
    ingest_file(path, NOTES, config)
    assert not config.salt_path.exists()
