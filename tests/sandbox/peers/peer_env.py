"""Third-party connectors ("peers") in virtual environments of their own, run as
subprocesses against the sandbox on loopback.

Each peer is pinned and installed from the package index into
``<cache>/peers/<name>-<version>-py<X><Y>``, where ``<cache>`` is
``$LEADSYNC_PEER_CACHE`` or the user's cache folder plus ``leadsync``; a finished
environment carries a marker file and is reused by later runs. Two test workers that
need the same peer take turns through a lock file.

The peers hard-code the real hosts (``https://api.hubapi.com``,
``https://login.salesforce.com``). Instead of a hosts-file entry, :data:`LAUNCHER`
starts the peer with ``socket.getaddrinfo`` overridden in the peer's process only:
the given names resolve to the sandbox's loopback port, loopback names resolve as
usual, and every other name fails, so a peer can never reach the real services. TLS
still verifies the real name against the sandbox's CA (``REQUESTS_CA_BUNDLE``,
``SSL_CERT_FILE``), which is what the hostnames option of ``serve`` is for.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import venv
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

READY = ".leadsync-peer-ready"
INSTALL_TIMEOUT = 1800


def cache_root() -> Path:
    """``$LEADSYNC_PEER_CACHE``, else the platform's user cache folder + leadsync/peers."""
    override = os.environ.get("LEADSYNC_PEER_CACHE")
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "leadsync" / "peers"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        if sys.platform != "win32":
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if sys.platform != "win32":
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@dataclass(frozen=True)
class Peer:
    """A pinned distribution and the console entry point to run (``module:function``)."""

    distribution: str
    version: str
    entry: str

    @property
    def folder(self) -> Path:
        tag = f"py{sys.version_info.major}{sys.version_info.minor}"
        return cache_root() / f"{self.distribution}-{self.version}-{tag}"

    @property
    def python(self) -> Path:
        scripts = "Scripts" if sys.platform == "win32" else "bin"
        return self.folder / scripts / ("python.exe" if sys.platform == "win32" else "python")

    def ensure(self) -> Path:
        """The peer's interpreter, installing the peer first if no finished
        environment is cached. Skips only when the package index cannot be reached."""
        if (self.folder / READY).exists():
            return self.python
        with _locked(self.folder.parent / (self.folder.name + ".lock")):
            if (self.folder / READY).exists():
                return self.python
            if self.folder.exists():
                import shutil

                shutil.rmtree(self.folder)  # a half-built environment from an interrupted run
            venv.EnvBuilder(with_pip=True, clear=True).create(self.folder)
            spec = f"{self.distribution}=={self.version}"
            done = subprocess.run(
                [str(self.python), "-m", "pip", "install", "--quiet", spec],
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT,
                check=False,
            )
            if done.returncode != 0:
                if not _index_reachable(self.python, self.distribution):
                    pytest.skip(f"the package index cannot be reached to install {spec}")
                pytest.fail(f"pip install {spec} failed:\n{done.stderr[-3000:]}")
            (self.folder / READY).write_text(spec + "\n")
        return self.python


def _index_reachable(python: Path, distribution: str) -> bool:
    probe = subprocess.run(
        [str(python), "-m", "pip", "index", "versions", distribution],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return probe.returncode == 0


LAUNCHER = r"""
import importlib, json, os, socket, sys

_routes = json.loads(os.environ["LEADSYNC_PEER_ROUTES"])
_real = socket.getaddrinfo
_loopback = {"localhost", "127.0.0.1", "::1"}


def _getaddrinfo(host, port, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    key = (name or "").lower().rstrip(".")
    if key in _routes:
        target_host, target_port = _routes[key]
        return _real(target_host, target_port, *args, **kwargs)
    if key in _loopback:
        return _real(host, port, *args, **kwargs)
    raise socket.gaierror(socket.EAI_NONAME, f"{name}: not routed to the sandbox")


socket.getaddrinfo = _getaddrinfo

# Tools that send prepared requests (Session.send) never read REQUESTS_CA_BUNDLE and
# verify against certifi's bundle, loaded when requests is first imported: point
# certifi at the sandbox's CA before anything imports requests.
try:
    import certifi
    import certifi.core

    certifi.where = certifi.core.where = lambda: os.environ["SSL_CERT_FILE"]
except ImportError:
    pass
module_name, _, function = sys.argv[1].partition(":")
sys.argv = [module_name] + sys.argv[2:]
sys.exit(getattr(importlib.import_module(module_name), function)())
"""


@dataclass
class Run:
    returncode: int
    messages: list[dict[str, object]]
    stderr: str


def run_peer(
    peer: Peer,
    args: Sequence[str],
    *,
    routes: Mapping[str, tuple[str, int]],
    ca_path: Path,
    workdir: Path,
    timeout: float = 600,
) -> Run:
    """Run the peer's entry point with ``args``; stdout is read as one JSON document
    (a Singer catalog) or as JSON lines (Airbyte and Singer messages; other lines are
    ignored)."""
    python = peer.ensure()
    launcher = workdir / "leadsync_peer_launch.py"
    launcher.write_text(LAUNCHER)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(workdir),
        "LEADSYNC_PEER_ROUTES": json.dumps({k.lower(): list(v) for k, v in routes.items()}),
        "REQUESTS_CA_BUNDLE": str(ca_path),
        "SSL_CERT_FILE": str(ca_path),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONWARNINGS": "ignore",
    }
    done = subprocess.run(
        [str(python), str(launcher), peer.entry, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=workdir,
        env=env,
        check=False,
    )
    messages: list[dict[str, object]] = []
    with contextlib.suppress(ValueError):  # a Singer catalog is one indented document
        whole = json.loads(done.stdout)
        if isinstance(whole, dict):
            return Run(done.returncode, [whole], done.stderr)
    for line in done.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                messages.append(json.loads(line))
    return Run(done.returncode, messages, done.stderr + done.stdout[-5000:])


__all__ = ["LAUNCHER", "Peer", "Run", "cache_root", "run_peer"]
