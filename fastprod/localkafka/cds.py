"""Class-data-sharing (AppCDS) archive for the Kafka JVMs: ~1 s less per broker start.

Loading and verifying ~4000 classes from 90 jars dominates a broker's startup on a small
machine. JDK 13+ can dump the classes a run loaded into an archive at exit
(-XX:ArchiveClassesAtExit) and map it on later starts (-XX:SharedArchiveFile). The first
broker a machine ever starts records the archive; every later JVM (brokers and tools) uses
it. A stale or broken archive only costs the speed-up: we validate before publishing, and
the JVM falls back to normal loading (-Xshare:auto) if it does not match.
Set FASTPROD_KAFKA_CDS=0 to disable.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import subprocess

from . import jars

log = logging.getLogger("fastprod.localkafka")


def enabled() -> bool:
    return os.environ.get("FASTPROD_KAFKA_CDS", "1").lower() not in ("0", "false", "no", "off")


def archive_path() -> pathlib.Path:
    # The archive is only valid for one JDK build and one classpath (paths and mtimes).
    java = os.path.realpath(jars.java_executable())
    try:
        stamp = str(os.stat(java).st_mtime_ns)
    except OSError:
        stamp = "?"
    key = hashlib.sha256(f"{java}\0{stamp}\0{jars.classpath()}".encode()).hexdigest()[:16]
    return jars.kafka_home() / "cds" / f"kafka-{key}.jsa"


def use_args() -> list[str]:
    """JVM flags to use the archive, or [] if there is none (yet)."""
    if not enabled():
        return []
    path = archive_path()
    return [f"-XX:SharedArchiveFile={path}", "-Xshare:auto"] if path.is_file() else []


def record_args() -> tuple[list[str], pathlib.Path] | None:
    """Flags to record a new archive in a private temp file, or None if not needed."""
    if not enabled():
        return None
    path = archive_path()
    if path.is_file():
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(path.parent)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    return [f"-XX:ArchiveClassesAtExit={tmp}"], tmp


def _remove_orphans(folder: pathlib.Path) -> None:
    # A recording whose owner died never got published; the files are ~50 MB each.
    for f in folder.glob("*.tmp"):
        try:
            pid = int(f.name.rsplit(".", 2)[-2])
        except ValueError:
            continue
        if not os.path.exists(f"/proc/{pid}"):
            f.unlink(missing_ok=True)


def publish(tmp: pathlib.Path) -> bool:
    """Move a recorded archive into place if the JVM can actually map it."""
    try:
        if not tmp.is_file() or tmp.stat().st_size == 0:
            return False
        # -Xshare:on makes the JVM refuse to start on a truncated or mismatched archive.
        rc = subprocess.run(
            [jars.java_executable(), "-Xshare:on", f"-XX:SharedArchiveFile={tmp}",
             "-cp", jars.classpath(), "-version"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            timeout=60,
        ).returncode  # fmt: skip
        if rc != 0:
            log.info("discarding CDS archive %s (JVM rejected it)", tmp)
            return False
        os.replace(tmp, archive_path())
        log.info("recorded CDS archive %s", archive_path())
        return True
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        tmp.unlink(missing_ok=True)
