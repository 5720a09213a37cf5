"""`python3 -m standins --config /etc/govops-standin/config.json`."""

from __future__ import annotations

import argparse
import sys

from .app import serve
from .config import ConfigError, load_config
from .core import DatabaseUnavailable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="standins", description="Run one govops stand-in.")
    parser.add_argument("--config", default="/etc/govops-standin/config.json")
    parser.add_argument("--check", action="store_true", help="validate the config and exit")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"standins: {exc}", file=sys.stderr)
        return 2
    if args.check:
        print(f"standins: {args.config}: ok ({config.kind})")
        return 0
    try:
        serve(config)
    except DatabaseUnavailable as exc:  # systemd restarts us (Restart=always)
        print(f"standins: {config.kind}: state store unavailable at start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
