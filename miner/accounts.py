"""App accounts: users with bcrypt-hashed passwords and a role, read from a YAML file outside the repo.

No streamlit here (testable in plain Python); :mod:`miner.ui.auth` draws the sign-in form.

Where accounts come from (first match wins; none = the app is open, for local use):

* ``$MINER_AUTH_FILE`` (default ``~/.config/topic-miner/auth.yaml``), in the layout
  streamlit-authenticator uses, so one file serves both::

      credentials:
        usernames:
          alice:
            name: 王小明
            password: $2b$12$...        # bcrypt hash, never the password
            roles: [editor]             # editor | viewer (default viewer)

* ``MINER_APP_PASSWORD`` (or ``password`` in ``.streamlit/secrets.toml``): one editor account,
  username ``admin``, kept for the single-password setup. With a file too, it is added as
  ``admin`` unless the file defines that name.

Add a user (asks for the password twice; writes the file owner-only, 0600)::

    python -m miner user add alice --role editor

If ``MINER_AUTH_FILE`` names a file that is missing or broken, :func:`configured_accounts` raises
:class:`AuthConfigError` and the app refuses everyone (fail closed), never falls back to open.
"""
from __future__ import annotations

import functools
import hmac
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import yaml

from miner.atomic import atomic_path

ROLES = ("viewer", "editor")
EDITOR, VIEWER = "editor", "viewer"
ENV_FILE = "MINER_AUTH_FILE"
ENV_PASSWORD = "MINER_APP_PASSWORD"
DEFAULT_FILE = "~/.config/topic-miner/auth.yaml"
SINGLE_USER = "admin"               # the MINER_APP_PASSWORD account
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_BYTES = 72             # bcrypt's limit; bcrypt 5 raises beyond it, so we refuse first
_USERNAME = re.compile(r"^[A-Za-z0-9_.@\-]{1,64}$")


class AuthConfigError(ValueError):
    """The accounts file is configured but cannot be used (missing, unreadable, malformed)."""


@dataclass(frozen=True)
class Account:
    username: str
    name: str
    role: str
    password_hash: bytes | None = None    # bcrypt, from the accounts file
    env_password: str | None = None       # the single-password account (compared in constant time)

    @property
    def is_editor(self) -> bool:
        return self.role == EDITOR

    def verify(self, password: str) -> bool:
        given = str(password).encode("utf-8")
        if self.env_password is not None:
            return hmac.compare_digest(given, self.env_password.encode("utf-8"))
        if self.password_hash is None or len(given) > MAX_PASSWORD_BYTES:
            return False
        try:
            return bcrypt.checkpw(given, self.password_hash)
        except ValueError:               # not a bcrypt hash: treat as a wrong password
            return False


def normalize_username(username: str) -> str:
    """Case- and space-insensitive; capped, so a flood of long made-up names stays small in memory."""
    return str(username).strip().casefold()[:64]


def auth_file() -> Path:
    return Path(os.environ.get(ENV_FILE) or DEFAULT_FILE).expanduser()


def hash_password(password: str) -> str:
    """bcrypt hash (cost 12) of ``password``; refuses short and over-long passwords."""
    raw = str(password).encode("utf-8")
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"password too short: at least {MIN_PASSWORD_CHARS} characters")
    if len(raw) > MAX_PASSWORD_BYTES:
        raise ValueError(f"password too long: at most {MAX_PASSWORD_BYTES} bytes (UTF-8)")
    return bcrypt.hashpw(raw, bcrypt.gensalt(rounds=12)).decode("ascii")


def _read_file(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise AuthConfigError(f"{path}: cannot read the accounts file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, dict):
        raise AuthConfigError(f"{path}: expected a mapping with credentials.usernames")
    return data


def _users(data: dict, path: Path) -> dict:
    users = (data.get("credentials") or {}).get("usernames") or {}
    if not isinstance(users, dict):
        raise AuthConfigError(f"{path}: credentials.usernames must be a mapping of username → entry")
    return users


def load_accounts(path: str | os.PathLike) -> dict[str, Account]:
    """Accounts in ``path`` by normalised username; AuthConfigError naming the file and user if bad."""
    path = Path(path)
    out: dict[str, Account] = {}
    for username, entry in _users(_read_file(path), path).items():
        where = f"{path}: user {username!r}"
        if not isinstance(entry, dict) or not entry.get("password"):
            raise AuthConfigError(f"{where}: needs a 'password' (bcrypt hash)")
        if not _USERNAME.match(str(username)):
            raise AuthConfigError(f"{where}: usernames are 1-64 of A-Z a-z 0-9 _ . @ -")
        hashed = str(entry["password"])
        if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise AuthConfigError(f"{where}: 'password' is not a bcrypt hash; "
                                  f"set it with `python -m miner user add {username}`")
        roles = entry.get("roles") or ([entry["role"]] if entry.get("role") else [VIEWER])
        unknown = set(map(str, roles)) - set(ROLES)
        if unknown:
            raise AuthConfigError(f"{where}: unknown role(s) {sorted(unknown)}; use {list(ROLES)}")
        key = normalize_username(username)
        out[key] = Account(key, str(entry.get("name") or username), EDITOR if EDITOR in roles else VIEWER,
                           password_hash=hashed.encode("ascii"))
    return out


def configured_accounts(secrets_password: str | None = None) -> dict[str, Account] | None:
    """Every account the app accepts, or None when nothing is configured (the app is open)."""
    path = auth_file()
    explicit = bool(os.environ.get(ENV_FILE))
    accounts: dict[str, Account] = {}
    if explicit or path.exists():
        if not path.is_file():
            raise AuthConfigError(f"{path}: {ENV_FILE} names a file that does not exist")
        accounts = load_accounts(path)
    password = os.environ.get(ENV_PASSWORD) or secrets_password
    if password:
        accounts.setdefault(SINGLE_USER, Account(SINGLE_USER, SINGLE_USER, EDITOR, env_password=password))
    if not accounts:
        if explicit or path.exists():
            raise AuthConfigError(f"{path}: no users; add one with `python -m miner user add NAME`")
        return None
    return accounts


@functools.cache
def _dummy_hash() -> bytes:
    """Checked when the username is unknown, so a miss costs the same bcrypt time as a wrong password."""
    return bcrypt.hashpw(b"topic-miner-no-such-user", bcrypt.gensalt(rounds=12))


def check_password(accounts: dict[str, Account], username: str, password: str) -> Account | None:
    """The account when ``password`` is right; None otherwise (unknown users cost the same time)."""
    account = accounts.get(normalize_username(username))
    if account is None:
        bcrypt.checkpw(b"wrong", _dummy_hash())
        return None
    return account if account.verify(password) else None


def add_user(path: str | os.PathLike, username: str, password: str, role: str = VIEWER,
             name: str | None = None) -> None:
    """Add or update ``username`` in the accounts file (atomic write, folder 0700, file 0600)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; use one of {list(ROLES)}")
    if not _USERNAME.match(username):
        raise ValueError(f"bad username {username!r}: 1-64 of A-Z a-z 0-9 _ . @ -")
    path = Path(path).expanduser()
    data = _read_file(path) if path.exists() else {}
    users = _users(data, path)
    users[username] = {"name": name or username, "password": hash_password(password), "roles": [role]}
    data.setdefault("credentials", {})["usernames"] = users
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=True), encoding="utf-8")
        os.chmod(tmp, 0o600)


class AttemptLimiter:
    """Failed sign-ins per key (username): ``max_failures`` within ``window_s`` lock it for ``lockout_s``.

    One instance is shared by every session of the server (``st.cache_resource``), so a new
    browser session does not reset the count. Thread-safe; old entries are pruned as it goes.
    """

    def __init__(self, max_failures: int = 5, window_s: float = 600.0, lockout_s: float = 300.0,
                 max_keys: int = 10_000, clock=time.monotonic):
        self.max_failures = max_failures
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.max_keys = max_keys
        self.clock = clock
        self._failures: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def locked_for(self, key: str) -> float:
        """Seconds until ``key`` may try again (0 = not locked)."""
        with self._lock:
            return max(0.0, self._locked_until.get(key, 0.0) - self.clock())

    def record_failure(self, key: str) -> float:
        """Count one failure; returns the lock time it started (0 = not locked yet)."""
        with self._lock:
            now = self.clock()
            self._prune(now)
            recent = [t for t in self._failures.get(key, []) if now - t < self.window_s] + [now]
            self._failures[key] = recent
            if len(recent) >= self.max_failures:
                self._locked_until[key] = now + self.lockout_s
                self._failures.pop(key)
                return self.lockout_s
            return 0.0

    def record_success(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _prune(self, now: float) -> None:
        for key in [k for k, until in self._locked_until.items() if until <= now]:
            del self._locked_until[key]
        for key in [k for k, ts in self._failures.items() if now - ts[-1] >= self.window_s]:
            del self._failures[key]
        if len(self._failures) > self.max_keys:     # a flood of made-up usernames: forget the oldest half
            oldest = sorted(self._failures, key=lambda k: self._failures[k][-1])
            for key in oldest[: len(oldest) // 2]:
                del self._failures[key]
