"""The `covet-otel` command: catalogue, settings, demo, job, mixin and check subcommands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import settings as settings_module
from .version import __version__


def _catalog(args: argparse.Namespace) -> int:
    from .catalogue import CATALOGUE, render

    defs = CATALOGUE
    if args.group:
        defs = tuple(d for d in defs if d.group == args.group)
    if args.source:
        defs = tuple(d for d in defs if d.source == args.source)
    renderers = {"json": render.as_json, "markdown": render.as_markdown, "table": render.as_table}
    sys.stdout.write(renderers[args.format](defs))
    return 0


def _settings(args: argparse.Namespace) -> int:
    if args.format == "markdown":
        sys.stdout.write(settings_module.as_markdown())
        return 0
    try:
        settings_module.load()
    except settings_module.SettingsError as exc:
        print(f"covet-otel: {exc}", file=sys.stderr)
        return 2
    for row in settings_module.describe():
        print(f"{row['env']} (default {row['default']}): {row['help']} Accepts {row['accepts']}.")
    print("The current environment's COVET_* values are valid.")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run

    return run(args)


def _mixin_build(args: argparse.Namespace) -> int:
    from .mixin.build import REPO_ROOT, build
    from .mixin.config import ConfigError, load_config

    try:
        config = load_config(*args.config)
    except (ConfigError, OSError) as exc:
        print(f"covet-otel: {exc}", file=sys.stderr)
        return 2
    written = build(config, args.out or REPO_ROOT)
    print(f"wrote {len(written)} files under {args.out or REPO_ROOT}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .catalogue import GROUPS

    parser = argparse.ArgumentParser(prog="covet-otel", description=__doc__)
    parser.add_argument("--version", action="version", version=f"covet-otel {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    catalog = sub.add_parser("catalog", help="print the metric catalogue")
    catalog.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    catalog.add_argument("--group", choices=GROUPS)
    catalog.add_argument("--source", choices=("sdk", "collector", "rule"))
    catalog.set_defaults(func=_catalog)

    check = sub.add_parser("settings", help="validate COVET_* variables and list every setting")
    check.add_argument("--format", choices=("text", "markdown"), default="text")
    check.set_defaults(func=_settings)

    from .demo import add_arguments

    demo = sub.add_parser("demo", help="run an instrumented demo app and drive traffic against it")
    add_arguments(demo)
    demo.set_defaults(func=_demo)

    mixin = sub.add_parser("mixin", help="alerts, dashboards and runbooks from one definition")
    mixin_sub = mixin.add_subparsers(dest="mixin_command", required=True)
    mixin_build = mixin_sub.add_parser("build", help="write alerts/, grafana/ and runbooks/ blocks")
    mixin_build.add_argument(
        "--config", action="append", default=[], type=Path, help="override YAML file (repeatable; later wins)"
    )
    mixin_build.add_argument("--out", type=Path, help="output directory (default: the repository top level)")
    mixin_build.set_defaults(func=_mixin_build)

    try:
        from . import cli_job
    except ImportError:  # the job subcommand ships with the application-events module
        pass
    else:
        cli_job.add_parser(sub)

    from . import check as check_module  # imports nothing heavy until it runs

    check_module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
