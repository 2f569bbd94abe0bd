"""CLI: ``user add`` — manage the app's accounts file (bcrypt hashes; see :mod:`miner.accounts`)."""
from __future__ import annotations

import getpass
import sys
from pathlib import Path

from miner.accounts import DEFAULT_FILE, ENV_FILE, ROLES, VIEWER, add_user, auth_file
from miner.config import MinerConfig


def register(sub) -> None:
    p = sub.add_parser("user", help="账户 manage the app's accounts file")
    users = p.add_subparsers(dest="user_command", required=True)
    add = users.add_parser("add", help="add or update a user (asks for the password)")
    add.add_argument("username")
    add.add_argument("--role", choices=ROLES, default=VIEWER)
    add.add_argument("--name", help="display name")
    add.add_argument("--file", help=f"accounts file (default ${ENV_FILE} or {DEFAULT_FILE})")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.set_defaults(handler=cmd_user_add)


def cmd_user_add(args, config: MinerConfig) -> int:
    path = Path(args.file).expanduser() if args.file else auth_file()
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("密码 Password: ")
        if getpass.getpass("再输一次 Again: ") != password:
            raise ValueError("两次输入不一致 passwords differ")
    add_user(path, args.username, password, args.role, args.name)     # ValueError → exit 2 (miner.cli)
    print(f"已保存 saved {args.username} ({args.role}) → {path}")
    return 0
