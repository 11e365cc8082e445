"""Fetch the pinned Apache Kafka jars from Maven Central into a cache outside the repo.

Maven does the dependency resolution (``mvn dependency:copy-dependencies`` on a tiny pom
we write into the cache), so we get exactly the runtime closure of the broker and the
Java tools without keeping a list of jars ourselves.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pathlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

log = logging.getLogger("fastprod.localkafka")

KAFKA_VERSION = "4.3.1"
SCALA_VERSION = "2.13"
# Kafka's distribution ships log4j-slf4j-impl for slf4j 1.7 (what kafka-clients declares);
# the Maven artifacts leave the binding out, so without it the broker would log nothing.
LOG4J_VERSION = "2.25.4"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
MARKER = ".complete"

_POM = """\
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>fastprod</groupId>
  <artifactId>localkafka-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{scala}</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""


class FetchError(RuntimeError):
    """Downloading the Kafka jars failed (Maven missing, no network, ...)."""


def cache_root() -> pathlib.Path:
    """``$FASTPROD_CACHE``, else ``$XDG_CACHE_HOME/fastprod``, else ``~/.cache/fastprod``."""
    env = os.environ.get("FASTPROD_CACHE")
    if env:
        return pathlib.Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = pathlib.Path(xdg).expanduser() if xdg else pathlib.Path.home() / ".cache"
    return base / "fastprod"


def kafka_home() -> pathlib.Path:
    return cache_root() / f"kafka-{KAFKA_VERSION}"


def jar_dir() -> pathlib.Path:
    return kafka_home() / "libs"


def _complete(libs: pathlib.Path) -> bool:
    return (libs / MARKER).is_file()


@contextlib.contextmanager
def _locked(path: pathlib.Path) -> Iterator[None]:
    # Several pytest workers or CLI invocations may fetch at once; one downloads, the
    # others wait and then find the marker.
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _mvn() -> str:
    mvn = os.environ.get("FASTPROD_MVN") or shutil.which("mvn")
    if not mvn:
        raise FetchError(
            "Apache Maven ('mvn') is needed to download the Kafka jars; install it "
            "(e.g. apt-get install maven) or set FASTPROD_MVN"
        )
    return mvn


def ensure_jars() -> pathlib.Path:
    """Return the directory holding the Kafka jars, downloading them first if needed.

    Idempotent and safe to call concurrently: a complete directory has a marker file
    and is never touched again.
    """
    libs = jar_dir()
    if _complete(libs):
        return libs
    home = kafka_home()
    with _locked(home / ".lock"):
        if _complete(libs):
            return libs
        log.info("downloading Apache Kafka %s jars into %s", KAFKA_VERSION, libs)
        pom = home / "pom.xml"
        pom.write_text(_POM.format(scala=SCALA_VERSION, kafka=KAFKA_VERSION, log4j=LOG4J_VERSION))
        # Download into a scratch dir and rename, so a crash never leaves a half-full libs/.
        tmp = pathlib.Path(tempfile.mkdtemp(prefix="libs.tmp-", dir=home))
        try:
            cmd = [
                _mvn(), "-q", "-B", "-f", str(pom),
                f"{DEPENDENCY_PLUGIN}:copy-dependencies",
                f"-DoutputDirectory={tmp}",
                "-DincludeScope=runtime",
            ]  # fmt: skip
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            jars = sorted(p.name for p in tmp.glob("*.jar"))
            if proc.returncode != 0 or not any(j.startswith("kafka-clients-") for j in jars):
                raise FetchError(
                    f"mvn failed (exit {proc.returncode}) fetching Kafka {KAFKA_VERSION}:\n"
                    + "\n".join(proc.stdout.splitlines()[-50:])
                )
            (tmp / MARKER).write_text("\n".join(jars) + "\n")
            if libs.exists():
                shutil.rmtree(libs)  # an incomplete leftover from an older layout
            tmp.rename(libs)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("fetched %d jars", len(jars))
    return libs


def jars() -> list[pathlib.Path]:
    # Canonical paths: the CDS archive is keyed on (and checked against) the classpath.
    libs = ensure_jars().resolve()
    return sorted(libs.glob("*.jar"))


def classpath() -> str:
    """All Kafka jars (broker, clients, tools and their dependencies) joined with os.pathsep."""
    return os.pathsep.join(str(p) for p in jars())


def java_executable() -> str:
    """``$FASTPROD_JAVA``, else ``$JAVA_HOME/bin/java``, else ``java`` on PATH."""
    env = os.environ.get("FASTPROD_JAVA")
    if env:
        return env
    home = os.environ.get("JAVA_HOME")
    if home and os.access(os.path.join(home, "bin", "java"), os.X_OK):
        return os.path.join(home, "bin", "java")
    java = shutil.which("java")
    if not java:
        raise FetchError("no 'java' found: install a JDK 17+ or set JAVA_HOME / FASTPROD_JAVA")
    return java
