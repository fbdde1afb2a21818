"""The run lock behind PgBouncer: it is a session advisory lock, so it holds behind
session pooling and breaks behind transaction pooling (a second run takes it while the
first holds it). ``docs/scale-out.md`` gives the configuration that works."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.state import LockHeld, StateStore

pytestmark = pytest.mark.slow
BINARY = shutil.which("pgbouncer") or (
    "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bouncer(tmp_path: Path, mode: str) -> Iterator[str]:
    if BINARY is None:
        pytest.skip("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    port = _free_port()
    # its own folder, readable by the postgres user it switches to when run as root
    tmp_path = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    tmp_path.chmod(0o777)
    ini = tmp_path / f"pgbouncer-{mode}.ini"
    ini.write_text(
        "[databases]\n"
        "test = host=127.0.0.1 port=5432 dbname=test user=postgres\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\n"
        f"unix_socket_dir = {tmp_path}\n"
        "auth_type = any\n"
        f"pool_mode = {mode}\n"
        "default_pool_size = 2\n"
        f"logfile = {tmp_path / 'pgbouncer.log'}\n"
        f"pidfile = {tmp_path / f'pgbouncer-{mode}.pid'}\n",
        encoding="utf-8",
    )
    command = [BINARY, str(ini)]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("pgbouncer will not run as root and there is no postgres user")
        command = [BINARY, "-u", "postgres", str(ini)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    log = tmp_path / "pgbouncer.log"
                    raise AssertionError(
                        "pgbouncer did not start: " + (log.read_text() if log.exists() else "")
                    ) from None
                time.sleep(0.1)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/test"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.fixture
def session_url(tmp_path: Path, pg_url: str) -> Iterator[str]:
    yield from _bouncer(tmp_path, "session")


@pytest.fixture
def transaction_url(tmp_path: Path, pg_url: str) -> Iterator[str]:
    yield from _bouncer(tmp_path, "transaction")


def _stores(url: str, schema: str, *, prepare: bool = True) -> tuple[StateStore, StateStore]:
    import sqlalchemy as sa

    first, second = StateStore(url, schema=schema), StateStore(url, schema=schema)
    if not prepare:
        # psycopg prepares statements on the server; behind transaction pooling the next
        # client's server connection already has them ("_pg3_0 already exists")
        for store in (first, second):
            store.engine.dispose()
            store.engine = sa.create_engine(url, connect_args={"prepare_threshold": None})
    with first.engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    first.migrate()
    return first, second


def _drop(url: str, schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def test_behind_session_pooling_the_run_lock_holds(session_url: str, unique: str) -> None:
    first, second = _stores(session_url, "ls_" + unique)
    try:
        first.acquire("default", ttl=60)
        with pytest.raises(LockHeld):
            second.acquire("default", ttl=60)
        first.release("default")
        second.acquire("default", ttl=60)  # released for real: the next run gets it
        second.release("default")
    finally:
        first.close()
        second.close()
        _drop(session_url, "ls_" + unique)


def test_behind_transaction_pooling_a_second_run_takes_a_held_lock(
    transaction_url: str, unique: str
) -> None:
    """Why the documentation says session pooling: the lock belongs to whichever
    server connection took it, and transaction pooling hands that connection to the
    next client, who then "holds" the lock too."""
    first, second = _stores(transaction_url, "ls_" + unique, prepare=False)
    try:
        first.acquire("default", ttl=60)
        taken = 0
        for _ in range(10):  # two server connections: the second client soon gets the first's
            try:
                second.acquire("default", ttl=60)
                taken += 1
                second._pg_lock_conns.pop("default").close()
            except LockHeld:
                pass
        assert taken > 0
    finally:
        first.close()
        second.close()
        _drop(transaction_url, "ls_" + unique)
