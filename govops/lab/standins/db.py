"""State stores: PostgreSQL (provincial systems) or SQLite (national counterparts).

SQL is written once with %s placeholders and portable types (timestamps are fixed-width ISO
text in UTC); `{serial}` in DDL becomes each engine's auto-increment primary key.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

from .config import Config, DatabaseConfig
from .core import DatabaseUnavailable

Params = Sequence[Any]
SCHEMA_LOCK = 0x60_0B5  # pg advisory lock id: one schema creator at a time


class Tx(Protocol):
    def all(self, sql: str, params: Params = ()) -> list[dict[str, Any]]: ...
    def one(self, sql: str, params: Params = ()) -> dict[str, Any] | None: ...
    def run(self, sql: str, params: Params = ()) -> int: ...


class Database(Protocol):
    engine: str

    def tx(self) -> AbstractContextManager[Tx]: ...
    def init_schema(self, statements: Sequence[str]) -> None: ...
    def ping(self) -> None: ...
    def close(self) -> None: ...


def open_database(config: Config) -> Database:
    if config.database is not None:
        return PostgresDatabase(config.database, application_name=f"govops-standin-{config.kind}")
    assert config.state_path is not None
    return SqliteDatabase(config.state_path)


class _SqliteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def _exec(self, sql: str, params: Params) -> sqlite3.Cursor:
        try:
            return self.conn.execute(sql.replace("%s", "?"), tuple(params))
        except sqlite3.OperationalError as exc:
            raise DatabaseUnavailable(f"sqlite: {exc}") from exc

    def all(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        return [dict(row) for row in self._exec(sql, params).fetchall()]

    def one(self, sql: str, params: Params = ()) -> dict[str, Any] | None:
        row = self._exec(sql, params).fetchone()
        return dict(row) if row is not None else None

    def run(self, sql: str, params: Params = ()) -> int:
        return self._exec(sql, params).rowcount


class SqliteDatabase:
    engine = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise DatabaseUnavailable(f"sqlite {self.path}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        return conn

    @contextmanager
    def tx(self) -> Iterator[Tx]:
        conn = self._connect()
        try:
            _SqliteTx(conn).run("BEGIN IMMEDIATE")
            try:
                yield _SqliteTx(conn)
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
        finally:
            conn.close()

    def init_schema(self, statements: Sequence[str]) -> None:
        conn = self._connect()
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()
        with self.tx() as tx:
            for statement in statements:
                tx.run(statement.replace("{serial}", "INTEGER PRIMARY KEY AUTOINCREMENT"))

    def ping(self) -> None:
        with self.tx() as tx:
            tx.one("SELECT 1 AS ok FROM standin_faults LIMIT 1")

    def close(self) -> None:
        pass


class _PgTx:
    def __init__(self, cur: Any, errors: tuple[type[BaseException], ...]) -> None:
        self.cur, self.errors = cur, errors

    def _exec(self, sql: str, params: Params) -> Any:
        try:
            return self.cur.execute(sql, tuple(params) or None)
        except self.errors as exc:
            raise DatabaseUnavailable(f"postgresql: {exc}") from exc

    def all(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        return list(self._exec(sql, params).fetchall())

    def one(self, sql: str, params: Params = ()) -> dict[str, Any] | None:
        row = self._exec(sql, params).fetchone()
        return dict(row) if row is not None else None

    def run(self, sql: str, params: Params = ()) -> int:
        return int(self._exec(sql, params).rowcount)


class PostgresDatabase:
    """Connections kept in a small pool; a connection idle for a while is checked first."""

    engine = "postgresql"
    MAX_IDLE = 8
    CHECK_AFTER_SECONDS = 5.0

    def __init__(self, settings: DatabaseConfig, application_name: str) -> None:
        import psycopg  # imported here: the national stand-ins run without it
        from psycopg.rows import dict_row

        self.psycopg, self.dict_row = psycopg, dict_row
        self.settings, self.application_name = settings, application_name
        self.errors: tuple[type[BaseException], ...] = (psycopg.OperationalError,)
        self.pool: list[tuple[float, Any]] = []
        self.lock = threading.Lock()

    def _connect(self) -> Any:
        kwargs: dict[str, Any] = {
            "sslmode": self.settings.sslmode,
            "connect_timeout": 5,
            "application_name": self.application_name,
        }
        if self.settings.sslrootcert:
            kwargs["sslrootcert"] = self.settings.sslrootcert
        if self.settings.password:
            kwargs["password"] = self.settings.password
        try:
            return self.psycopg.connect(
                self.settings.dsn, autocommit=True, row_factory=self.dict_row, **kwargs
            )
        except self.errors as exc:
            raise DatabaseUnavailable(f"postgresql: {exc}".strip()) from exc

    def _checkout(self) -> Any:
        with self.lock:
            idle_since, conn = self.pool.pop() if self.pool else (0.0, None)
        if conn is not None and time.monotonic() - idle_since > self.CHECK_AFTER_SECONDS:
            try:
                conn.execute("SELECT 1")
            except self.errors:
                conn.close()
                conn = None
        return conn if conn is not None else self._connect()

    def _checkin(self, conn: Any) -> None:
        healthy = not conn.closed and not getattr(conn, "broken", False)
        with self.lock:
            if healthy and len(self.pool) < self.MAX_IDLE:
                self.pool.append((time.monotonic(), conn))
                return
        conn.close()

    @contextmanager
    def tx(self) -> Iterator[Tx]:
        conn = self._checkout()
        try:
            with conn.transaction(), conn.cursor() as cur:
                yield _PgTx(cur, self.errors)
        except self.errors as exc:  # raised at COMMIT
            raise DatabaseUnavailable(f"postgresql: {exc}") from exc
        finally:
            self._checkin(conn)

    def init_schema(self, statements: Sequence[str]) -> None:
        serial = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
        with self.tx() as tx:
            tx.run("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            for statement in statements:
                tx.run(statement.replace("{serial}", serial))

    def ping(self) -> None:
        with self.tx() as tx:
            tx.one("SELECT 1 AS ok FROM standin_faults LIMIT 1")

    def close(self) -> None:
        with self.lock:
            pool, self.pool = self.pool, []
        for _, conn in pool:
            conn.close()
