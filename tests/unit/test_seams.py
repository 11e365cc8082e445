"""The seams of the engine (fastprod/engine/seams.py): mypy checks that each
implementation provides its Protocol; and the worker's metadata keeps the leader-epoch
rule for itself."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from fastprod.cluster.snapshot import ClusterSnapshot, Node, PartitionInfo
from fastprod.sharded.worker_metadata import WorkerMetadata

ROOT = pathlib.Path(__file__).resolve().parents[2]


def mypy(path: str) -> subprocess.CompletedProcess:
    pytest.importorskip("mypy", reason="mypy is in the test extra")
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--follow-imports=silent", "--no-error-summary",
         "--ignore-missing-imports", "--cache-dir", str(ROOT / ".mypy_cache"), path],
        capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_metadata_worker_metadata_and_networks_provide_their_protocols():
    result = mypy("tests/typecheck/seams_check.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_reports_a_missing_method():
    result = mypy("tests/typecheck/seams_mistake.py")
    assert result.returncode == 1 and "update_leadership" in result.stdout, result.stdout


class _Control:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)


def snapshot(version: int, leader: int, epoch: int) -> ClusterSnapshot:
    nodes = {i: Node(i, "127.0.0.1", 9000 + i) for i in (1, 2, 3)}
    return ClusterSnapshot(version=version, cluster_id="c", controller_id=1, nodes=nodes,
                           topics={"t": (PartitionInfo("t", 0, leader, epoch),)})


def test_a_worker_keeps_a_newer_leader_than_its_parents_snapshot():
    """A produce answer named leader 2 at epoch 6 (KIP-951); the parent's next snapshot
    still says leader 1 at epoch 5 (fetched before the move): the worker keeps 2."""
    import threading

    m = WorkerMetadata(_Control(), threading.Lock())
    seen = []
    m.listeners.append(seen.append)
    m.set_snapshot(snapshot(10, leader=1, epoch=5))
    assert m.update_leadership({("t", 0): (2, 6)}, []) == {("t", 0)}
    assert m.snapshot.topics["t"][0].leader == 2
    m.set_snapshot(snapshot(11, leader=1, epoch=5))  # older than the hint
    assert m.snapshot.topics["t"][0].leader == 2
    m.set_snapshot(snapshot(12, leader=3, epoch=7))  # newer: taken
    assert m.snapshot.topics["t"][0].leader == 3
    # The worker numbers what it publishes: the accumulator caches leaders by version,
    # and the hint's snapshot must not share a number with the parent's next one.
    versions = [s.version for s in seen]
    assert versions == sorted(set(versions)) and len(versions) == 4


def test_what_send_returns_is_typed():
    """RecordFuture and RecordMetadata come from an extension module: its stub
    (fastprod/_ext/accumulate.pyi) is what makes them more than Any."""
    assert mypy("tests/typecheck/public_api.py").returncode == 0
    result = mypy("tests/typecheck/public_api_mistake.py")
    assert result.returncode == 1
    assert '"timeout" to "result"' in result.stdout and '"ofset"' in result.stdout, \
        result.stdout


def test_every_extension_module_has_a_stub():
    ext = ROOT / "fastprod" / "_ext"
    missing = [p.stem for p in ext.glob("*.pyx") if not (ext / f"{p.stem}.pyi").exists()]
    assert not missing, f"no .pyi stub for fastprod._ext.{missing}"


def test_no_cython_DEF_is_left():
    """DEF and IF are deprecated in Cython 3: constants are cdef enums (or cdef values)."""
    import re

    for path in (ROOT / "fastprod" / "_ext").glob("*.p[yx]*"):
        if path.suffix not in (".pyx", ".pxd"):
            continue
        hits = re.findall(r"^\s*(?:DEF|IF)\s+\w+", path.read_text(), re.M)
        assert not hits, f"{path.name}: {hits}"
