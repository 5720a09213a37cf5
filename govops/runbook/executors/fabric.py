"""`fabric`: a command over SSH on one or more hosts (Fabric ThreadingGroup).

Host keys are always checked (paramiko's RejectPolicy): against the environment's known_hosts
(in the lab, the one the lab wrote from inside each container) or the user's own. Host names
map to the inventory's addresses when `resolve: inventory`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from govops.runbook.executors.base import (
    Args,
    ExecContext,
    Executor,
    Outcome,
    tail,
)


class FabricArgs(Args):
    hosts: list[str] = Field(min_length=1)
    command: str = Field(min_length=1)
    sudo: bool = False
    expect_exit: int = 0
    user: str | None = None


def _split(host: str) -> tuple[str, int]:
    name, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
    return (name, int(port)) if port.isdigit() else (host, 22)


class FabricExecutor(Executor):
    name = "fabric"
    Args = FabricArgs

    def run(self, args: Any, ctx: ExecContext) -> Outcome:
        assert isinstance(args, FabricArgs)
        # Imported here: paramiko and fabric cost a noticeable start-up for every other run.
        import paramiko
        from fabric import Config, Connection, ThreadingGroup
        from fabric.exceptions import GroupException

        settings = ctx.settings
        mapped = {
            h: settings.addresses[h]
            for h in map(lambda x: _split(x)[0], args.hosts)
            if h in settings.addresses
        }
        ssh_config = paramiko.SSHConfig.from_text(
            "".join(f"Host {name}\n  HostName {ip}\n" for name, ip in mapped.items())
        )
        config = Config(ssh_config=ssh_config)
        connections = []
        for host in args.hosts:
            name, port = _split(host)
            own_key = settings.ssh_key is not None
            conn = Connection(
                name,
                user=args.user or settings.ssh_user,
                port=port,
                config=config,
                connect_timeout=max(1.0, min(15.0, ctx.remaining())),
                connect_kwargs={
                    **({"key_filename": str(settings.ssh_key)} if own_key else {}),
                    "look_for_keys": not own_key,
                    "allow_agent": not own_key,
                },
            )
            keys = conn.client.get_host_keys()
            known = settings.known_hosts or Path.home() / ".ssh" / "known_hosts"
            if known.is_file():
                keys.load(str(known))
            conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
            connections.append(conn)
        group = ThreadingGroup.from_connections(connections)
        runner = group.sudo if args.sudo else group.run
        try:
            results: Any = runner(
                args.command,
                hide=True,
                warn=True,
                timeout=max(1, int(ctx.remaining())),
                in_stream=False,
            )
        except GroupException as exc:
            results = exc.result
        finally:
            group.close()
        lines: list[str] = []
        failures: list[str] = []
        for conn, result in results.items():
            if isinstance(result, BaseException):
                failures.append(f"{conn.host}: {_reason(result)}")
                lines.append(f"== {conn.host}: {_reason(result)}")
                continue
            lines.append(f"== {conn.host}: exit {result.exited}\n{result.stdout}{result.stderr}")
            if result.exited != args.expect_exit:
                excerpt = tail(result.stderr or result.stdout, 2, 200)
                failures.append(f"{conn.host}: exit {result.exited}: {excerpt}")
        log = ctx.log_path
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("\n".join(lines), encoding="utf-8")
        if failures:
            return Outcome(False, "; ".join(failures), {"log": str(log)})
        return Outcome(True, f"{len(args.hosts)} host(s) ok", {"log": str(log)})

    def describe(self, args: Any) -> str:
        assert isinstance(args, FabricArgs)
        return f"ssh {','.join(args.hosts)}: {args.command}"


def _reason(exc: BaseException) -> str:
    import paramiko

    if isinstance(exc, paramiko.SSHException) and "not found in known_hosts" in str(exc):
        return f"host key not known (host key checking is on): {exc}"
    text = str(exc) or type(exc).__name__
    if "timed out" in text.lower():
        return f"timed out: {text}"
    return text
