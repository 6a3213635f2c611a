"""The ``callswitch`` command line: serve, migrate, check, demo, version.

Exit codes: 0 success; 1 a check failed or the service could not run; 2 usage error;
78 (EX_CONFIG) the configuration is invalid, so systemd need not restart in a loop.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from callswitch import __version__, logs
from callswitch.config import Config, ConfigError, load_config
from callswitch.routing.reload import RulesHolder
from callswitch.yamlsrc import SourceError

Handler = Callable[[argparse.Namespace], int]
EX_CONFIG = 78
DEFAULT_CONFIG = "/etc/callswitch/callswitch.yaml"
EXAMPLE_CONFIG = "config/callswitch.example.yaml"
DEMO_ROUTING = "config/routing.demo.yaml"


def _print_problems(what: str, error: SourceError) -> None:
    print(f"callswitch: invalid {what} ({len(error.problems)} problem(s)):", file=sys.stderr)
    for problem in error.problems:
        print(f"  {problem}", file=sys.stderr)


def _load(args: argparse.Namespace) -> Config | None:
    path = args.config or os.environ.get("CALLSWITCH_CONFIG") or DEFAULT_CONFIG
    try:
        return load_config(path)
    except ConfigError as exc:
        _print_problems("configuration", exc)
        return None


def _version(args: argparse.Namespace) -> int:
    print(f"callswitch {__version__}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return EX_CONFIG
    logs.configure(config.logging.level, config.logging.format)
    if not config.database.dsn:
        print("callswitch: database.dsn is not set (CALLSWITCH_DATABASE_DSN); `callswitch demo` runs without one",
              file=sys.stderr)
        return EX_CONFIG
    from callswitch.daemon import serve

    rules = _load_rules(config)
    if rules is False:
        return EX_CONFIG
    return asyncio.run(serve(config, rules=rules if isinstance(rules, RulesHolder) else None))


def _load_rules(config: Config) -> RulesHolder | bool | None:
    """The routing rules, None without a routing file, False (after printing why) if invalid."""
    from callswitch.daemon import load_rules

    try:
        return load_rules(config)
    except SourceError as exc:
        _print_problems("routing rules", exc)
        return False


async def _migrate_async(dsn: str) -> list[int]:
    import asyncpg

    from callswitch.db.migrate import migrate

    conn = await asyncpg.connect(dsn)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


def _migrate(args: argparse.Namespace) -> int:
    dsn = args.dsn
    if not dsn:
        config = _load(args)
        if config is None:
            return EX_CONFIG
        dsn = config.database.dsn
    if not dsn:
        print("callswitch: no database: set database.dsn or pass --dsn", file=sys.stderr)
        return EX_CONFIG
    logs.configure("info", "console" if sys.stderr.isatty() else "json")
    from callswitch.db.migrate import MigrationError, latest_version

    try:
        applied = asyncio.run(_migrate_async(dsn))
    except MigrationError as exc:
        print(f"callswitch: migration failed: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"callswitch: cannot reach Postgres: {exc}", file=sys.stderr)
        return 1
    if applied:
        print(f"applied migrations {', '.join(f'{v:04d}' for v in applied)}; schema version {latest_version()}")
    else:
        print(f"schema is current (version {latest_version()})")
    return 0


async def _check_database(dsn: str) -> tuple[bool, str]:
    import asyncpg

    from callswitch.db.migrate import current_version, latest_version

    try:
        conn = await asyncio.wait_for(asyncpg.connect(dsn), 10)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return False, f"cannot connect: {exc}"
    try:
        version = await current_version(conn)
    finally:
        await conn.close()
    latest = latest_version()
    if version < latest:
        return False, f"schema version {version}, this release needs {latest}: run `callswitch migrate`"
    if version > latest:
        return False, f"schema version {version} is newer than this release knows ({latest})"
    return True, f"reachable, schema version {version}"


def _check(args: argparse.Namespace) -> int:
    """Validate everything the daemon depends on and print a pass/fail list."""
    results: list[tuple[str, bool, str]] = []
    config = _load(args)
    results.append(("configuration", config is not None, "valid" if config else "invalid (see above)"))
    rules: RulesHolder | bool | None = None
    if config is not None and config.routing_file:
        rules = _load_rules(config)
        results.append(("routing rules", rules is not False,
                         f"{config.routing_file} valid" if rules is not False else "invalid (see above)"))
    if config is not None and not args.offline:
        if config.database.dsn:
            ok, detail = asyncio.run(_check_database(config.database.dsn))
            results.append(("postgres", ok, detail))
        else:
            results.append(("postgres", False, "database.dsn is not set"))
        from callswitch.ops.check import check_asterisk

        live_rules = rules.rules if isinstance(rules, RulesHolder) else None
        for server in config.ami_servers:
            results += asyncio.run(check_asterisk(server, live_rules))
    width = max(len(name) for name, _, _ in results)
    for name, ok, detail in results:
        print(f"{'PASS' if ok else 'FAIL'}  {name.ljust(width)}  {detail}")
    if config is None or rules is False:
        return EX_CONFIG
    return 0 if all(ok for _, ok, _ in results) else 1


def _demo(args: argparse.Namespace) -> int:
    from callswitch.demo import run_demo

    own_config = bool(args.config)
    args.config = args.config or EXAMPLE_CONFIG
    config = _load(args)
    if config is None:
        return EX_CONFIG
    if not own_config and Path(DEMO_ROUTING).exists():
        config = replace(config, routing_file=DEMO_ROUTING)  # open around the clock
    if args.port:
        http = replace(config.http, port=args.port, public_url=f"http://{config.http.host}:{args.port}")
        config = replace(config, http=http)
    rules = _load_rules(config)
    if rules is False:
        return EX_CONFIG
    logs.configure(config.logging.level, "console" if sys.stderr.isatty() else config.logging.format)
    return run_demo(config, Path(args.var), rules if isinstance(rules, RulesHolder) else None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callswitch", description="Web-callback soft switch on Asterisk.")
    parser.add_argument("--version", action="version", version=f"callswitch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("-c", "--config", help=f"configuration file (default: $CALLSWITCH_CONFIG or {DEFAULT_CONFIG})")
        return p

    p = with_config(sub.add_parser("serve", help="run the service"))
    p.set_defaults(func=_serve)
    p = with_config(sub.add_parser("migrate", help="apply database migrations"))
    p.add_argument("--dsn", help="Postgres DSN (default: database.dsn of the configuration)")
    p.set_defaults(func=_migrate)
    p = with_config(sub.add_parser("check", help="validate the configuration and test the connections"))
    p.add_argument("--offline", action="store_true",
                   help="only validate the configuration and routing rules (no Postgres, no Asterisk)")
    p.set_defaults(func=_check)
    p = with_config(sub.add_parser("demo", help=f"run a demo (default config {EXAMPLE_CONFIG}, private Postgres)"))
    p.add_argument("--port", type=int, help="HTTP port (default: from the configuration)")
    p.add_argument("--var", default="var", help="directory for the demo's private Postgres (default: ./var)")
    p.set_defaults(func=_demo)
    p = sub.add_parser("version", help="print the version")
    p.set_defaults(func=_version)
    from callswitch.reports.cli import register as register_reports
    from callswitch.routing.cli import register as register_rules

    register_rules(sub)
    register_reports(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Handler = args.func
    return func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
