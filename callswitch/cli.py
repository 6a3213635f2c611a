"""The ``callswitch`` command line: serve, migrate, check, demo, version, rules, ..."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from callswitch import __version__

Handler = Callable[[argparse.Namespace], int]


def _version(args: argparse.Namespace) -> int:
    print(f"callswitch {__version__}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callswitch", description="Web-callback soft switch on Asterisk.")
    parser.add_argument("--version", action="version", version=f"callswitch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser("version", help="print the version")
    p.set_defaults(func=_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Handler = args.func
    return func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
