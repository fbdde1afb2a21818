"""Where peers are cached, and when a peer test may skip: only when the package
index cannot be reached; an install that fails with the index reachable fails."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import peer_env
import pytest
from peer_env import Peer, cache_root


def test_cache_root_honours_the_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LEADSYNC_PEER_CACHE", str(tmp_path / "peers"))
    assert cache_root() == tmp_path / "peers"
    assert Peer("x-tap", "1.0", "x:main").folder.parent == tmp_path / "peers"


def test_cache_root_defaults_to_the_user_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:  # fmt: skip
    monkeypatch.delenv("LEADSYNC_PEER_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    root = cache_root()
    assert root.parts[-2:] == ("leadsync", "peers")
    assert Path(__file__).resolve().parents[3] not in root.resolve().parents  # never in the repo


def _fake_pip(monkeypatch: pytest.MonkeyPatch, *, install_ok: bool, index_ok: bool) -> list[list[str]]:  # fmt: skip
    calls: list[list[str]] = []

    def run(cmd: list[str], **_kw: Any) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        ok = index_ok if "index" in cmd else install_ok
        return subprocess.CompletedProcess(cmd, 0 if ok else 1, "", "" if ok else "network down")

    monkeypatch.setattr(peer_env.subprocess, "run", run)
    monkeypatch.setattr(peer_env.venv.EnvBuilder, "create", lambda self, path: Path(path).mkdir(parents=True))  # fmt: skip
    return calls


def test_skips_when_the_index_cannot_be_reached(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:  # fmt: skip
    monkeypatch.setenv("LEADSYNC_PEER_CACHE", str(tmp_path))
    _fake_pip(monkeypatch, install_ok=False, index_ok=False)
    with pytest.raises(pytest.skip.Exception, match="package index cannot be reached"):
        Peer("x-tap", "1.0", "x:main").ensure()


def test_fails_when_the_install_breaks_with_the_index_reachable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:  # fmt: skip
    monkeypatch.setenv("LEADSYNC_PEER_CACHE", str(tmp_path))
    _fake_pip(monkeypatch, install_ok=False, index_ok=True)
    with pytest.raises(pytest.fail.Exception, match=r"pip install x-tap==1\.0 failed"):
        Peer("x-tap", "1.0", "x:main").ensure()


def test_a_finished_environment_is_reused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LEADSYNC_PEER_CACHE", str(tmp_path))
    calls = _fake_pip(monkeypatch, install_ok=True, index_ok=True)
    peer = Peer("x-tap", "1.0", "x:main")
    first = peer.ensure()
    assert len(calls) == 1 and (peer.folder / peer_env.READY).exists()
    assert peer.ensure() == first and len(calls) == 1
