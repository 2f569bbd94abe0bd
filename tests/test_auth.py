"""Accounts, roles, attempt limiting and the sign-in guard on every page (miner/accounts.py, miner/ui/auth.py).

Signed-out tests need no workspace (nothing past the guard may run; they check that the workspace
folder is never even created). Role tests use the small payload workspace from conftest.py.
"""
from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest
import yaml
from streamlit.testing.v1 import AppTest

from miner.topics.snapshot import latest_run_id
from miner import accounts
from miner.accounts import AttemptLimiter, AuthConfigError

REPO = Path(__file__).resolve().parent.parent
PAGES = ["pages/overview.py", "pages/topic_detail.py", "pages/search.py", "pages/brief.py", "pages/curation.py", "pages/data.py"]
TIMEOUT = 120
VIEWER, EDITOR = ("vera", "viewer-pass-1"), ("eddie", "editor-pass-1")


@pytest.fixture(scope="module")
def accounts_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "conf" / "auth.yaml"
    accounts.add_user(path, VIEWER[0], VIEWER[1], "viewer", name="Vera 只读")
    accounts.add_user(path, EDITOR[0], EDITOR[1], "editor")
    return path


@pytest.fixture(autouse=True)
def _fresh_limiter():
    from miner.ui import auth
    auth._limiter.clear()          # the limiter is process-wide (st.cache_resource); isolate tests
    yield
    auth._limiter.clear()


@pytest.fixture
def with_accounts(accounts_file, monkeypatch, tmp_path):
    """Accounts configured; the workspace points at a folder that must stay absent while signed out."""
    monkeypatch.setenv("MINER_AUTH_FILE", str(accounts_file))
    monkeypatch.delenv("MINER_APP_PASSWORD", raising=False)
    monkeypatch.setenv("MINER_WORKSPACE_DIR", str(tmp_path / "never-created"))
    monkeypatch.setenv("MINER_MODELS_DIR", str(tmp_path / "models-never-created"))
    return tmp_path


def app_at(path: str = "app.py", **state) -> AppTest:
    at = AppTest.from_file(str(REPO / path), default_timeout=TIMEOUT)
    for key, value in state.items():
        at.session_state[key] = value
    return at


def sign_in(at: AppTest, username: str | None, password: str) -> AppTest:
    if username is not None:
        at.text_input(key="auth.username").input(username)
    at.text_input(key="auth.password").input(password)
    return at.button[0].click().run()         # the form's submit button


def assert_login_only(at: AppTest) -> None:
    """The sign-in form and nothing of the workspace."""
    assert not at.exception, [e.message for e in at.exception]
    assert [t.value for t in at.title] == ["选题雷达 Topic Miner"]
    assert at.text_input(key="auth.password") is not None
    assert not at.metric and not at.dataframe and not at.get("plotly_chart") and not at.sidebar.code


# ---- accounts file -----------------------------------------------------------------------------------
def test_add_user_writes_owner_only_bcrypt_file(accounts_file):
    assert stat.S_IMODE(accounts_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(accounts_file.parent.stat().st_mode) == 0o700
    text = accounts_file.read_text(encoding="utf-8")
    assert VIEWER[1] not in text and EDITOR[1] not in text           # only hashes are stored
    users = yaml.safe_load(text)["credentials"]["usernames"]         # streamlit-authenticator layout
    assert users["vera"]["roles"] == ["viewer"] and users["eddie"]["roles"] == ["editor"]
    assert users["vera"]["password"].startswith("$2b$12$")
    loaded = accounts.load_accounts(accounts_file)
    assert (loaded["vera"].role, loaded["vera"].name, loaded["eddie"].is_editor) == ("viewer", "Vera 只读", True)
    assert loaded["vera"].verify(VIEWER[1]) and not loaded["vera"].verify(EDITOR[1])


def test_add_user_updates_and_refuses_weak_input(tmp_path):
    path = tmp_path / "a.yaml"
    accounts.add_user(path, "Ann", "first-password", "viewer")
    accounts.add_user(path, "Ann", "second-password", "editor")          # update in place
    loaded = accounts.load_accounts(path)
    assert list(loaded) == ["ann"] and loaded["ann"].is_editor and loaded["ann"].verify("second-password")
    with pytest.raises(ValueError, match="too short"):
        accounts.add_user(path, "bob", "short", "viewer")
    with pytest.raises(ValueError, match="too long"):
        accounts.add_user(path, "bob", "密" * 25, "viewer")              # 75 UTF-8 bytes > bcrypt's 72
    with pytest.raises(ValueError, match="unknown role"):
        accounts.add_user(path, "bob", "long-enough-pw", "admin")
    with pytest.raises(ValueError, match="bad username"):
        accounts.add_user(path, "bob smith", "long-enough-pw", "viewer")


@pytest.mark.parametrize("entry, message", [
    ({"password": "plain-text-password"}, "not a bcrypt hash"),
    ({"password": "$2b$12$" + "x" * 53, "roles": ["owner"]}, "unknown role"),
    ({"name": "no password"}, "needs a 'password'"),
])
def test_load_accounts_names_file_and_user_of_bad_entries(tmp_path, entry, message):
    path = tmp_path / "auth.yaml"
    path.write_text(yaml.safe_dump({"credentials": {"usernames": {"mallory": entry}}}), encoding="utf-8")
    with pytest.raises(AuthConfigError, match=message) as info:
        accounts.load_accounts(path)
    assert str(path) in str(info.value) and "mallory" in str(info.value)


def test_configured_accounts_sources(accounts_file, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))                       # no ~/.config/topic-miner/auth.yaml
    monkeypatch.delenv("MINER_AUTH_FILE", raising=False)
    monkeypatch.delenv("MINER_APP_PASSWORD", raising=False)
    assert accounts.configured_accounts() is None                    # open app
    monkeypatch.setenv("MINER_APP_PASSWORD", "s3cret")
    single = accounts.configured_accounts()
    assert list(single) == ["admin"] and single["admin"].is_editor and single["admin"].verify("s3cret")
    monkeypatch.setenv("MINER_AUTH_FILE", str(accounts_file))
    assert set(accounts.configured_accounts()) == {"vera", "eddie", "admin"}
    monkeypatch.setenv("MINER_AUTH_FILE", str(tmp_path / "typo.yaml"))
    with pytest.raises(AuthConfigError, match="does not exist"):    # fail closed, never open
        accounts.configured_accounts()
    monkeypatch.delenv("MINER_AUTH_FILE")
    default = tmp_path / ".config" / "topic-miner" / "auth.yaml"    # the default path is picked up
    accounts.add_user(default, "dora", "dora-password", "viewer")
    assert set(accounts.configured_accounts()) == {"dora", "admin"}


def test_check_password_edge_cases(accounts_file):
    known = accounts.load_accounts(accounts_file)
    assert accounts.check_password(known, "  VERA ", VIEWER[1]).username == "vera"   # case/space-insensitive
    assert accounts.check_password(known, "vera", "wrong") is None
    assert accounts.check_password(known, "nobody", VIEWER[1]) is None
    assert accounts.check_password(known, "vera", "x" * 100) is None                 # > 72 bytes: no crash


def test_cli_add_user(tmp_path, monkeypatch, capsys):
    path = tmp_path / "cli" / "auth.yaml"
    monkeypatch.setattr("sys.stdin", io.StringIO("cli-password-1\n"))
    from miner.cli import main
    assert main(["user", "add", "carol", "--role", "editor", "--file", str(path), "--password-stdin"]) == 0
    assert "carol" in capsys.readouterr().out
    assert accounts.load_accounts(path)["carol"].verify("cli-password-1")
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["user", "add", "dan", "--file", str(path), "--password-stdin"]) == 2
    assert "too short" in capsys.readouterr().err


# ---- attempt limiting ----------------------------------------------------------------------------------
class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_attempt_limiter_window_and_lockout():
    clock = FakeClock()
    limiter = AttemptLimiter(max_failures=5, window_s=600, lockout_s=300, clock=clock)
    for _ in range(4):
        assert limiter.record_failure("vera") == 0.0
        clock.now += 10
    assert limiter.locked_for("vera") == 0.0
    assert limiter.record_failure("vera") == 300                  # 5th failure within 10 min
    clock.now += 100
    assert limiter.locked_for("vera") == pytest.approx(200)
    assert limiter.locked_for("eddie") == 0.0                      # per username
    clock.now += 200
    assert limiter.locked_for("vera") == 0.0                       # the lock expires
    for _ in range(4):                                             # spread over more than the window
        limiter.record_failure("eddie")
        clock.now += 200
    assert limiter.locked_for("eddie") == 0.0
    limiter.record_failure("ann")
    limiter.record_success("ann")
    assert all(limiter.record_failure("ann") == 0.0 for _ in range(4))   # success reset the count


def test_attempt_limiter_memory_is_bounded():
    limiter = AttemptLimiter(max_keys=100, clock=FakeClock())
    for i in range(1000):
        limiter.record_failure(f"made-up-{i}")
    assert len(limiter._failures) <= 101


# ---- signed out: every URL, every page ---------------------------------------------------------------
@pytest.mark.parametrize("path", PAGES)
def test_page_alone_signed_out_shows_only_the_form(with_accounts, path):
    at = app_at(path).run()            # what Streamlit runs for /<page> before any st.navigation call
    assert_login_only(at)
    assert at.text_input(key="auth.username") is not None
    assert not (with_accounts / "never-created").exists()           # nothing past the guard ran


def test_router_every_url_signed_out_shows_the_form(with_accounts):
    at = app_at().run()
    assert_login_only(at)
    for path in PAGES:
        at.switch_page(path).run()
        assert_login_only(at)
    assert not (with_accounts / "never-created").exists()


def test_misconfigured_accounts_refuse_everyone(monkeypatch, tmp_path):
    monkeypatch.setenv("MINER_AUTH_FILE", str(tmp_path / "missing.yaml"))
    monkeypatch.setenv("MINER_WORKSPACE_DIR", str(tmp_path / "never-created"))
    for path in ("app.py", "pages/data.py"):
        at = app_at(path).run()
        assert not at.exception
        assert "已拒绝所有访问" in at.error[0].value
        assert "missing.yaml" in at.code[0].value
        assert not at.text_input and not at.metric
    assert not (tmp_path / "never-created").exists()


def test_wrong_password_then_lockout_is_server_side(with_accounts):
    at = app_at().run()
    for _ in range(4):
        sign_in(at, "vera", "wrong")
        assert "用户名或密码错误" in at.error[0].value
    sign_in(at, "vera", "wrong")
    assert "失败次数过多" in at.error[0].value
    other = app_at().run()                          # a new browser session does not reset the count
    sign_in(other, "VERA", VIEWER[1])               # even the right password is refused while locked
    assert "失败次数过多" in other.error[0].value
    assert_login_only(other)
    sign_in(other, "eddie", "wrong")                # other users are not locked
    assert "用户名或密码错误" in other.error[0].value


# ---- roles on a real workspace -------------------------------------------------------------------------
@pytest.fixture
def signed_workspace(payload_workspace, accounts_file, monkeypatch):
    monkeypatch.setenv("MINER_AUTH_FILE", str(accounts_file))
    return payload_workspace


def test_sign_in_opens_the_requested_page_and_sign_out_closes_it(signed_workspace):
    at = app_at().switch_page("pages/search.py").run()
    assert_login_only(at)
    sign_in(at, *VIEWER)
    assert not at.exception and "选题搜索" in at.title[0].value        # the URL asked for, not the default
    assert "Vera 只读 · 只读 viewer" in [t.value for t in at.sidebar.text]
    at.button(key="auth.sign_out").click().run()
    assert_login_only(at)


class FakeUpload:
    def __init__(self, name: str, data: bytes):
        self.name, self._data = name, data

    def getvalue(self) -> bytes:
        return self._data


NOTES_CSV = ("note_id,title,body,author_id,published_at,likes,collects,comments,shares\n"
             "viewer_1,我的笔记,露营装备清单,a1,2024-05-01 10:00,1,2,3,4\n").encode()


def _record_writes(monkeypatch) -> list[str]:
    """Replace the upload widget (AppTest has none) and record the workspace writes the page asks for."""
    import streamlit as st
    from miner.workspace import Workspace
    called: list[str] = []
    monkeypatch.setattr(st, "file_uploader", lambda *a, **k: FakeUpload("n.csv", NOTES_CSV))
    monkeypatch.setattr(Workspace, "ingest_upload", lambda *a, **k: called.append("ingest"))
    monkeypatch.setattr(Workspace, "build", lambda *a, **k: called.append("rebuild"))
    return called


def test_viewer_cannot_upload_replace_or_rebuild(signed_workspace, monkeypatch):
    called = _record_writes(monkeypatch)
    serving = latest_run_id(signed_workspace)
    at = app_at("pages/data.py", **{"auth.user": "vera", "data.mode": "replace"}).run()
    assert not at.exception
    assert "只读账户" in at.info[0].value
    assert at.button(key="data.ingest").disabled and at.button(key="data.rebuild").disabled
    assert at.radio(key="data.mode").disabled
    at.button(key="data.ingest").click().run()      # a forged click on the disabled buttons does nothing
    at.button(key="data.rebuild").click().run()
    assert not at.exception and called == []
    assert latest_run_id(signed_workspace) == serving
    assert "data.report" not in at.session_state and "data.build" not in at.session_state


def test_editor_may_upload_and_rebuild(signed_workspace, monkeypatch):
    called = _record_writes(monkeypatch)
    at = app_at("pages/data.py", **{"auth.user": "eddie"}).run()
    assert not at.exception and not at.info
    assert not at.button(key="data.ingest").disabled and not at.button(key="data.rebuild").disabled
    at.button(key="data.ingest").click().run()
    at.button(key="data.rebuild").click().run()
    assert called == ["ingest", "rebuild"]


def test_single_password_is_one_editor_account(payload_workspace, monkeypatch):
    monkeypatch.setenv("MINER_APP_PASSWORD", "single-pass")
    at = app_at().switch_page("pages/data.py").run()
    assert_login_only(at)
    assert [t.key for t in at.text_input] == ["auth.password"]               # password only
    sign_in(at, None, "nope")
    assert "密码错误" in at.error[0].value
    sign_in(at, None, "single-pass")
    assert not at.exception and "数据管理" in at.title[0].value
    assert not at.button(key="data.rebuild").disabled                         # an editor


def test_require_editor_stops_viewers(accounts_file, monkeypatch):
    monkeypatch.setenv("MINER_AUTH_FILE", str(accounts_file))

    def script():
        import streamlit as st
        from miner.ui import auth
        st.text(f"user={auth.current_user()} edit={auth.can_edit()}")
        auth.require_editor()
        st.text("curation tools")

    viewer = AppTest.from_function(script)
    viewer.session_state["auth.user"] = "vera"
    viewer.run()
    assert [t.value for t in viewer.text] == ["user=vera edit=False"] and "编辑权限" in viewer.warning[0].value
    editor = AppTest.from_function(script)
    editor.session_state["auth.user"] = "eddie"
    editor.run()
    assert [t.value for t in editor.text] == ["user=eddie edit=True", "curation tools"]
