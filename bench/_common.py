"""What the benchmark scripts share: building fastprod at a given commit, and
confluent-kafka's produce loop (every script measures it the same way).

Imported by bench/*.py and their children, which run with bench/ on sys.path.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build_revision(rev: str) -> tuple[str, str]:
    """git archive ``rev`` into a temp dir (reused when already built) and build its
    extensions in place there; returns (dir, label). The checkout is shared with people
    editing and rebuilding fastprod: a clean copy keeps every run of a benchmark on the
    same code."""
    sha = subprocess.run(["git", "rev-parse", "--verify", rev + "^{commit}"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.strip()
    dest = Path(tempfile.gettempdir()) / f"fastprod-bench-{sha[:12]}"
    stamp = dest / ".bench-built"
    if not stamp.exists():
        print(f"building fastprod {sha[:12]} in {dest}", file=sys.stderr, flush=True)
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha], cwd=ROOT, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        cmd = [sys.executable, "setup.py", "build_ext", "--inplace"]
        build = subprocess.run(cmd, cwd=dest, capture_output=True, text=True)
        if build.returncode != 0 and (dest / "pyproject.toml").exists():
            # e.g. a pyproject.toml newer than this venv's setuptools understands: the
            # extensions need none of its metadata, so build them without it.
            print(f"build_ext failed ({build.stderr.strip().splitlines()[:1]}); retrying "
                  f"without pyproject.toml", file=sys.stderr, flush=True)
            (dest / "pyproject.toml").rename(dest / "pyproject.toml.orig")
            build = subprocess.run(cmd, cwd=dest, capture_output=True, text=True)
        if build.returncode != 0:
            sys.exit(f"building {sha[:12]} failed:\n{build.stdout[-3000:]}{build.stderr[-3000:]}")
        stamp.write_text(sha + "\n")
    last = subprocess.run(["git", "log", "-1", "--format=%h %s", sha, "--", "fastprod",
                           "setup.py"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return str(dest), (f"git {sha[:7]}, a clean build of that commit (fastprod/ last changed "
                       f"by {last[:100]})")


def confluent_produce(p, topic: str, values, keys=None) -> int:
    """confluent-kafka's produce() + poll(0) per record, as its users write it: on
    BufferError poll(0.1) and try again. Returns how many such waits there were."""
    produce, poll = p.produce, p.poll
    buffer_full = 0
    if keys is None:
        for v in values:
            try:
                produce(topic, v)
            except BufferError:
                while True:
                    buffer_full += 1
                    poll(0.1)
                    try:
                        produce(topic, v)
                        break
                    except BufferError:
                        pass
            poll(0)
    else:
        for v, k in zip(values, keys):
            try:
                produce(topic, v, key=k)
            except BufferError:
                while True:
                    buffer_full += 1
                    poll(0.1)
                    try:
                        produce(topic, v, key=k)
                        break
                    except BufferError:
                        pass
            poll(0)
    return buffer_full
