"""CLI verbs for editors and API tokens: `archive user add|list|remove`, `archive token
create|list|revoke`.

A password comes from a hidden prompt on a terminal, or, for scripts, as two lines on stdin
(the password and its confirmation), never from the command line where `ps` would show it.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable

from archive import audit
from archive.auth import Auth
from archive.cli import COMMANDS, EXTENSIONS
from archive.config import Settings
from archive.errors import InvalidInput
from archive.runtime import Archive, open_archive


def read_new_password() -> str:
    """Ask twice (terminal) or read two lines (pipe); refuse when they differ."""
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        second = getpass.getpass("Password (again): ")
    else:
        first, second = sys.stdin.readline(), sys.stdin.readline()
        first, second = first.rstrip("\r\n"), second.rstrip("\r\n")
        if not second:
            raise InvalidInput("Give the password twice, on two lines of standard input.")
    if first != second:
        raise InvalidInput("The two passwords differ.")
    return first


def _with_auth(settings: Settings, work: Callable[[Auth, Archive], int]) -> int:
    with open_archive(settings) as archive:
        return work(Auth(archive.store, ttl=0), archive)


def user_command(args: argparse.Namespace, settings: Settings) -> int:
    def work(auth: Auth, archive: Archive) -> int:
        actor = f"cli:{getpass.getuser()}"
        if args.action == "add":
            name = auth.add_user(args.name, read_new_password())
            audit.record(archive.store, actor, "user.add", name)
            print(f"Added editor {name}.")
        elif args.action == "password":
            auth.set_password(args.name, read_new_password())
            audit.record(archive.store, actor, "user.password", args.name.lower())
            print(f"Changed the password of {args.name.lower()} and signed them out "
                  "everywhere.")
        elif args.action == "remove":
            auth.remove_user(args.name)
            audit.record(archive.store, actor, "user.remove", args.name.lower())
            print(f"Removed editor {args.name.lower()} and revoked their tokens.")
        else:
            for name in auth.list_users():
                print(name)
        return 0

    return _with_auth(settings, work)


def token_command(args: argparse.Namespace, settings: Settings) -> int:
    def work(auth: Auth, archive: Archive) -> int:
        actor = f"cli:{getpass.getuser()}"
        if args.action == "create":
            info, secret = auth.create_token(args.name, args.label or "")
            audit.record(archive.store, actor, "token.create", info.id, user=info.user)
            print(f"Token {info.id} for {info.user}. It is shown only this once; keep it secret:")
            print(secret)
        elif args.action == "revoke":
            info = auth.revoke_token(args.name)
            audit.record(archive.store, actor, "token.revoke", info.id, user=info.user)
            print(f"Revoked token {info.id} of {info.user}.")
        else:
            for info in auth.list_tokens():
                label = f"  {info.label}" if info.label else ""
                print(f"{info.id}  {info.user:<20} {info.created_at}{label}")
        return 0

    return _with_auth(settings, work)


def add_verbs(verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    user = verbs.add_parser("user", help="manage editors (who may upload and edit)")
    user_actions = user.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (("add", "add an editor"),
                         ("password", "change an editor's password (ends all their sessions)"),
                         ("remove", "remove an editor and revoke their tokens")):
        user_actions.add_parser(action, help=text).add_argument("name", metavar="NAME")
    user_actions.add_parser("list", help="list editors")

    token = verbs.add_parser("token", help="manage API tokens")
    token_actions = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = token_actions.add_parser("create", help="create a token for editor NAME")
    create.add_argument("name", metavar="NAME")
    create.add_argument("--label", help="what the token is for")
    token_actions.add_parser("revoke", help="revoke a token by id").add_argument(
        "name", metavar="ID")
    token_actions.add_parser("list", help="list tokens (never their secrets)")


COMMANDS.update({"user": user_command, "token": token_command})
EXTENSIONS.append(add_verbs)
