"""Compile and run the small Java programs in tests/java/ against the Kafka client jars.

The jars come from ``fastprod.localkafka.classpath()`` (Apache Kafka's own jars from
Maven Central, cached under ~/.cache/fastprod). ``oracle()`` compiles
``tests/java/KernelOracle.java`` once per test session into a temporary directory and
returns an object whose methods each run ONE JVM for a whole batch of inputs:

- ``murmur2(keys, partition_counts)``: ``Utils.murmur2``, ``Utils.toPositive`` and
  ``BuiltInPartitioner.partitionForKey`` of every key;
- ``read_batches(batches)``: Java's ``MemoryRecords``/``DefaultRecordBatch`` decode
  and validate each record batch;
- ``write_batches(specs)``: Java's ``MemoryRecordsBuilder`` writes record batches.

Tests that need it call ``require_java()`` first: it skips when no JDK is on PATH.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

JAVA_DIR = Path(__file__).resolve().parent / "java"
ORACLE_CLASS = "KernelOracle"


def require_java() -> None:
    """Skip the calling test when ``java``/``javac`` (JDK 17+) are not on PATH."""
    if shutil.which("java") is None or shutil.which("javac") is None:
        pytest.skip("a JDK (java and javac on PATH) is needed for the Java reference checks")


def kafka_classpath() -> str:
    """The Kafka client jars as a classpath string, from fastprod.localkafka."""
    from fastprod import localkafka

    cp = localkafka.classpath()  # downloads the jars into ~/.cache/fastprod on first use
    if isinstance(cp, (str, os.PathLike)):
        return os.fspath(cp)
    return os.pathsep.join(os.fspath(p) for p in cp)


def _enc(data: bytes | None) -> str:
    return "-" if data is None else "x" + bytes(data).hex()


def _dec(token: str) -> bytes | None:
    if token == "-":
        return None
    assert token.startswith("x"), token
    return bytes.fromhex(token[1:])


@dataclass
class JavaRecord:
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


@dataclass
class JavaBatch:
    base_offset: int
    last_offset: int
    compression_type: int
    is_transactional: bool
    is_control: bool
    producer_id: int
    producer_epoch: int
    base_sequence: int
    partition_leader_epoch: int
    max_timestamp: int
    crc: int
    count: int
    records: list[JavaRecord] = field(default_factory=list)


class JavaError(Exception):
    """Java rejected a batch: ``args[0]`` is the exception class, ``args[1]`` its message."""


@dataclass
class BatchSpec:
    """What ``write_batches`` asks Java's MemoryRecordsBuilder to write."""

    records: list[tuple[int, bytes | None, bytes | None, list[tuple[str | bytes, bytes | None]]]]
    compression_type: int = 0
    producer_id: int = -1
    producer_epoch: int = -1
    base_sequence: int = -1
    is_transactional: bool = False
    base_offset: int = 0
    partition_leader_epoch: int = -1


class JavaOracle:
    def __init__(self, classpath: str, classdir: str) -> None:
        self.classpath = classpath
        self.classdir = classdir

    def _run(self, args: list[str], stdin: str, timeout: float = 120) -> list[str]:
        proc = subprocess.run(
            ["java", "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-cp",
             self.classdir + os.pathsep + self.classpath, ORACLE_CLASS, *args],
            input=stdin, capture_output=True, text=True, timeout=timeout, check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"java {ORACLE_CLASS} {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
        return proc.stdout.splitlines()

    def murmur2(self, keys: list[bytes], partition_counts: list[int]
                ) -> list[tuple[int, int, list[int]]]:
        """For each key: (murmur2, toPositive(murmur2), [partitionForKey(key, n)...])."""
        lines = self._run(["murmur2", *map(str, partition_counts)],
                          "".join(_enc(k) + "\n" for k in keys))
        assert len(lines) == len(keys), (len(lines), len(keys))
        out = []
        for line in lines:
            nums = [int(x) for x in line.split()]
            out.append((nums[0], nums[1], nums[2:]))
        return out

    def read_batches(self, batches: list[bytes]) -> list[list[JavaBatch] | JavaError]:
        """Java's decoding of each buffer (usually one batch each), or the JavaError."""
        lines = self._run(["read"], "".join(_enc(b) + "\n" for b in batches))
        results: list[list[JavaBatch] | JavaError] = []
        current: list[JavaBatch] = []
        for line in lines:
            tag, _, rest = line.partition(" ")
            if tag == "ERROR":
                cls, _, msg = rest.partition(" ")
                results.append(JavaError(cls, msg))
                current = []
            elif tag == "BATCH":
                f = rest.split()
                current.append(JavaBatch(
                    int(f[0]), int(f[1]), int(f[2]), f[3] == "true", f[4] == "true",
                    int(f[5]), int(f[6]), int(f[7]), int(f[8]), int(f[9]), int(f[10]),
                    int(f[11])))
            elif tag == "REC":
                f = rest.split()
                n = int(f[4])
                headers = [(_dec(f[5 + 2 * i]).decode("utf-8"), _dec(f[6 + 2 * i]))
                           for i in range(n)]
                current[-1].records.append(
                    JavaRecord(int(f[0]), int(f[1]), _dec(f[2]), _dec(f[3]), headers))
            elif tag == "END":
                results.append(current)
                current = []
            else:
                raise AssertionError(f"unexpected output line from Java: {line!r}")
        assert len(results) == len(batches), (len(results), len(batches))
        return results

    def write_batches(self, specs: list[BatchSpec]) -> list[bytes]:
        """The bytes Java's MemoryRecordsBuilder writes for each spec."""
        parts = []
        for s in specs:
            parts.append(
                f"BATCH {s.compression_type} {s.producer_id} {s.producer_epoch} "
                f"{s.base_sequence} {'true' if s.is_transactional else 'false'} "
                f"{s.base_offset} {s.partition_leader_epoch}\n")
            for ts, key, value, headers in s.records:
                hs = "".join(
                    f" {_enc(k.encode('utf-8') if isinstance(k, str) else k)} {_enc(v)}"
                    for k, v in headers)
                parts.append(f"REC {ts} {_enc(key)} {_enc(value)} {len(headers)}{hs}\n")
            parts.append("END\n")
        lines = self._run(["write"], "".join(parts))
        assert len(lines) == len(specs), (len(lines), len(specs))
        return [_dec(line) for line in lines]


@functools.lru_cache(maxsize=None)
def oracle() -> JavaOracle:
    """Compile tests/java/KernelOracle.java once per process and return the runner."""
    require_java()
    classpath = kafka_classpath()
    classdir = tempfile.mkdtemp(prefix="fastprod-java-")
    atexit.register(shutil.rmtree, classdir, ignore_errors=True)
    proc = subprocess.run(
        ["javac", "-nowarn", "-d", classdir, "-cp", classpath,
         str(JAVA_DIR / f"{ORACLE_CLASS}.java")],
        capture_output=True, text=True, timeout=300, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"javac failed:\n{proc.stdout}\n{proc.stderr}")
    return JavaOracle(classpath, classdir)
