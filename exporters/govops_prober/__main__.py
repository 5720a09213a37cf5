"""Run the domain prober.

On the monitoring host (stdlib, aiohttp and prometheus_client from Debian):
`python3 -m govops_prober --config FILE`.
In a govops checkout (config from the registry): `python -m exporters.govops_prober --env lab`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from .config import ConfigError, ProberConfig, load_config
from .prober import Prober
from .server import Exporter, serve

DEFAULT_LISTEN = "127.0.0.1:9471"


def parse_listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected host:port, got {value!r}")
    return host.strip("[]"), int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="govops_prober", description=__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="the JSON config written by the controller")
    source.add_argument("--env", help="build the config from inventories/ENV (needs govops)")
    parser.add_argument("--endpoints", help="with --env: YAML replacing some URLs")
    parser.add_argument("--ca-file", help="with --env: CA bundle the fronts' certificates chain to")
    parser.add_argument("--listen", type=parse_listen, default=parse_listen(DEFAULT_LISTEN))
    parser.add_argument(
        "--log-level", default="INFO", type=str.upper, choices=("DEBUG", "INFO", "WARNING", "ERROR")
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        config = load_config(args.config) if args.config is not None else _from_estate(args)
    except ConfigError as exc:
        print(f"govops_prober: {exc}", file=sys.stderr)
        return 2
    run(config, *args.listen)
    return 0


def _from_estate(args: argparse.Namespace) -> ProberConfig:
    from pathlib import Path

    from govops.errors import GovopsError
    from govops.paths import repo_root
    from govops.registry import estate_path, load_estate

    from .from_estate import config_from_estate, load_endpoints

    try:
        estate = load_estate(estate_path(repo_root() / "inventories", args.env))
        endpoints = load_endpoints(Path(args.endpoints)) if args.endpoints else None
        return config_from_estate(
            estate, endpoints=endpoints, endpoints_source=args.endpoints or "", ca_file=args.ca_file
        )
    except GovopsError as exc:
        raise ConfigError(str(exc)) from exc


def run(config: ProberConfig, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    prober = Prober(config)
    server, thread = serve(Exporter(prober), host, port)
    logging.getLogger("govops_prober").info(
        "serving %d provinces of %s on %s:%d", len(config.provinces), config.environment, host, port
    )
    stop.wait()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
    prober.close()


if __name__ == "__main__":
    sys.exit(main())
