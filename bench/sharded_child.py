"""One run of bench/sharded.py in a fresh process: ``python bench/sharded_child.py SPEC_JSON``.

bench/sharded.py starts this once per (client, case, repeat), so that the CPU of the
producing process covers exactly one client (the approach of bench/e2e_child.py).
SPEC_JSON keys:

    client       sharded | producer | confluent
    api          "batch" (send_batch in chunks of ``chunk``) or "send" (one send() per
                 record); confluent always produce() + poll(0)
    workers      ShardedProducer(workers=...) (sharded only)
    bootstrap    host:port
    topic        the fresh, empty topic that gets ``records`` records
    warmup_topic a topic for the warm-up records (connections, metadata) before timing
    records, value_size, chunk
    config       the client's own config dict (bootstrap.servers added here)
    broker_pid   JVM pid of the broker, or null: its /proc CPU is sampled with ours
    profile      a directory: cProfile the parent (and, for sharded, every worker
                 process) and write the stats there; null: no profiling

Measured over the timed window (first send to the end of flush):

- wall time;
- CPU of this process, every thread, children excluded: ``getrusage(RUSAGE_SELF)``
  (microsecond resolution; ``os.times()`` user+system, which has 10 ms ticks, is
  recorded too as a cross-check) - for ShardedProducer this is the *parent* cost;
- CPU of each worker process (sharded): utime+stime from /proc/<pid>/stat before and
  after the window, and per thread from /proc/<pid>/task/<tid>/schedstat (ns) (the
  worker's main thread reads the ring and appends; its other threads are the engine's
  sender and a control thread);
- CPU of this process per thread (main = the send loop; reports, stager, metadata,
  sender threads), from /proc/self/task/<tid>/schedstat;
- broker JVM CPU and the machine's busy fraction (/proc/stat).

The last line on stdout is one JSON object; anything else goes to stderr.

Also imported by bench/exactly_once_child.py for the data and CPU helpers.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # a source checkout with the extensions built in place
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/, for _common

from _common import confluent_produce  # noqa: E402
from data import make_keys, make_values  # noqa: E402,F401  (distinct values and keys)

WARMUP_RECORDS = 2_000
PROFILE_ENV = "FASTPROD_BENCH_WORKER_PROFILE"


# ---- CPU sampling ---------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _stat_times(path: str) -> tuple[float, float] | None:
    """(utime, stime) in seconds from a /proc .../stat file."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    return int(fields[11]) / _TICK, int(fields[12]) / _TICK  # fields 14, 15 of proc(5)


def _stat_cpu(path: str) -> float | None:
    """utime+stime in seconds from a /proc .../stat file."""
    t = _stat_times(path)
    return None if t is None else t[0] + t[1]


def proc_cpu(pid: int | None) -> float | None:
    """CPU seconds of process ``pid`` (all its threads, not its children)."""
    return None if pid is None else _stat_cpu(f"/proc/{pid}/stat")


def _schedstat_cpu(path: str) -> float | None:
    """Time on CPU in seconds (nanosecond resolution) from a /proc .../schedstat file."""
    try:
        with open(path, "rb") as fh:
            return int(fh.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def tasks_cpu(pid: int | str) -> dict[int, float]:
    """CPU seconds per thread of ``pid`` ("self" for this process): schedstat (ns)
    where the kernel has it, else utime+stime (10 ms ticks)."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        cpu = _schedstat_cpu(f"/proc/{pid}/task/{tid}/schedstat")
        if cpu is None:
            cpu = _stat_cpu(f"/proc/{pid}/task/{tid}/stat")
        if cpu is not None:
            out[int(tid)] = cpu
    return out


def self_cpu() -> tuple[float, float]:
    """(user, system) CPU seconds of this process, every thread, children excluded
    (microsecond resolution)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime, ru.ru_stime


def times_cpu() -> float:
    t = os.times()
    return t.user + t.system  # self only: children_user/children_system left out


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs, from /proc/stat."""
    with open("/proc/stat", "rb") as fh:
        parts = [int(x) for x in fh.readline().split()[1:]]
    idle = parts[3] + parts[4]  # idle + iowait
    return sum(parts[:8]) - idle, sum(parts[:8])


class Window:
    """Wall, own CPU (total and per thread), worker CPU, broker CPU and machine CPU
    between start() and stop()."""

    def __init__(self, broker_pid: int | None, worker_pids: list[int] | None = None) -> None:
        self.broker_pid = broker_pid
        self.worker_pids = worker_pids or []

    def start(self) -> None:
        self.m0 = machine_cpu()
        self.b0 = proc_cpu(self.broker_pid)
        self.w0 = [tasks_cpu(pid) for pid in self.worker_pids]
        self.wp0 = [_stat_times(f"/proc/{pid}/stat") for pid in self.worker_pids]
        self.th0 = tasks_cpu("self")
        self.x0 = times_cpu()
        self.c0 = self_cpu()
        self.t0 = time.perf_counter()

    def stop(self) -> dict:
        t1 = time.perf_counter()
        c1 = self_cpu()
        x1 = times_cpu()
        th1 = tasks_cpu("self")
        wp1 = [_stat_times(f"/proc/{pid}/stat") for pid in self.worker_pids]
        w1 = [tasks_cpu(pid) for pid in self.worker_pids]
        b1 = proc_cpu(self.broker_pid)
        m1 = machine_cpu()
        busy, total = m1[0] - self.m0[0], m1[1] - self.m0[1]
        names = {t.native_id: t.name for t in threading.enumerate()}
        threads: dict[str, float] = {}
        for tid, cpu in th1.items():
            name = _thread_label(names.get(tid, "exited" if tid != os.getpid() else "main"))
            if tid == os.getpid():
                name = "main"
            threads[name] = threads.get(name, 0.0) + cpu - self.th0.get(tid, 0.0)
        workers = []
        for pid, before, after, p0, p1 in zip(self.worker_pids, self.w0, w1, self.wp0, wp1):
            main_t = after.get(pid, 0.0) - before.get(pid, 0.0)
            other = sum(cpu - before.get(tid, 0.0) for tid, cpu in after.items() if tid != pid)
            ok = p0 is not None and p1 is not None
            workers.append({"pid": pid,
                            "cpu_s": (p1[0] + p1[1] - p0[0] - p0[1]) if ok else None,
                            "user_s": (p1[0] - p0[0]) if ok else None,
                            "sys_s": (p1[1] - p0[1]) if ok else None,
                            "main_s": main_t, "threads_s": other})
        return {
            "wall_s": t1 - self.t0,
            "cpu_s": c1[0] + c1[1] - self.c0[0] - self.c0[1],
            "user_s": c1[0] - self.c0[0],
            "sys_s": c1[1] - self.c0[1],
            "times_cpu_s": x1 - self.x0,
            "threads": threads,
            "workers": workers,
            "broker_cpu_s": None if b1 is None or self.b0 is None else b1 - self.b0,
            "machine_busy": busy / total if total > 0 else None,
            "ncpu": os.cpu_count(),
        }


def _thread_label(name: str) -> str:
    """fastprod-reports-producer-1 -> reports; Thread-3 stays."""
    if name.startswith("fastprod-"):
        parts = name.split("-")
        return parts[1] if len(parts) > 1 else name
    return name


# ---- clients --------------------------------------------------------------------------------

def _timed_fastprod(p, spec: dict, values: list, window: Window) -> dict:
    topic, n = spec["topic"], len(values)
    profile = _Profiles() if spec.get("profile") else None
    if profile:
        profile.caller.enable()
    window.start()
    # as a careful user: every future kept and checked after flush, inside the window
    if spec["api"] == "batch":
        chunk = spec["chunk"]
        send_batch = p.send_batch
        futures = [send_batch(topic, values[i:i + chunk]) for i in range(0, n, chunk)]
        p.flush()
        failed = sum(len(f.errors()) for f in futures)
    else:
        send = p.send
        futures = [send(topic, v) for v in values]
        p.flush()
        failed = sum(f.exception() is not None for f in futures)
    out = window.stop()
    if failed:
        raise RuntimeError(f"fastprod: {failed} records failed")
    if profile:
        profile.caller.disable()
        profile.caller.dump_stats(os.path.join(spec["profile"], "parent-caller.prof"))
    return out


def _warm_up(p, spec: dict, values: list) -> None:
    """Connections, code paths, the target topic's metadata."""
    wv = values[:WARMUP_RECORDS]
    if spec["api"] == "batch":
        p.send_batch(spec["warmup_topic"], wv)
    else:
        for v in wv:
            p.send(spec["warmup_topic"], v)
    p.flush()
    p.partitions_for(spec["topic"])


def run_sharded(spec: dict, values: list) -> dict:
    from fastprod.sharded import ShardedProducer

    cfg = {"bootstrap.servers": spec["bootstrap"], **spec["config"]}
    threads_profile = _install_thread_profiling() if spec.get("profile") else None
    if spec.get("profile"):
        os.environ[PROFILE_ENV] = spec["profile"]  # spawned workers inherit it
    p = ShardedProducer(cfg, workers=spec["workers"])
    try:
        _warm_up(p, spec, values)
        time.sleep(0.3)  # the workers get the topic's metadata snapshot
        pids = [w.process.pid for w in p._workers]
        out = _timed_fastprod(p, spec, values, Window(spec.get("broker_pid"), pids))
        out["worker_restarts"] = sum(w.process.pid != pid for w, pid in zip(p._workers, pids))
    finally:
        p.close()
    if threads_profile:
        _dump_thread_profiles(threads_profile, spec["profile"], "parent-threads.prof")
    return out


def run_producer(spec: dict, values: list) -> dict:
    from fastprod import Producer

    cfg = {"bootstrap.servers": spec["bootstrap"], **spec["config"]}
    threads_profile = _install_thread_profiling() if spec.get("profile") else None
    p = Producer(cfg)
    try:
        _warm_up(p, spec, values)
        out = _timed_fastprod(p, spec, values, Window(spec.get("broker_pid")))
    finally:
        p.close()
    if threads_profile:
        _dump_thread_profiles(threads_profile, spec["profile"], "parent-threads.prof")
    return out


def run_confluent(spec: dict, values: list) -> dict:
    from confluent_kafka import Producer

    failed = []  # as a careful user: a delivery report per record, errors kept

    def on_delivery(err, msg) -> None:
        if err is not None:
            failed.append(err)

    p = Producer({"bootstrap.servers": spec["bootstrap"], "on_delivery": on_delivery,
                  **spec["config"]})
    topic = spec["topic"]
    for v in values[:WARMUP_RECORDS]:
        p.produce(spec["warmup_topic"], v)
        p.poll(0)
    p.flush()
    p.list_topics(topic, timeout=10)

    window = Window(spec.get("broker_pid"))
    window.start()
    buffer_full = confluent_produce(p, topic, values)
    left = p.flush(120)
    out = window.stop()
    if left or failed:
        raise RuntimeError(f"confluent: {left} records undelivered, {len(failed)} failed")
    out["buffer_full_waits"] = buffer_full
    return out


RUNNERS = {"sharded": run_sharded, "producer": run_producer, "confluent": run_confluent}


# ---- profiling ------------------------------------------------------------------------------

class _Profiles:
    def __init__(self) -> None:
        import cProfile

        self.caller = cProfile.Profile()


def _install_thread_profiling() -> list:
    """cProfile every thread started from now on; returns the list of their profiles."""
    import cProfile

    profiles: list = []
    orig_run = threading.Thread.run

    def run(self):
        prof = cProfile.Profile()
        prof.enable()  # cProfile profiles the thread that enables it
        try:
            orig_run(self)
        finally:
            prof.disable()
            profiles.append(prof)  # only finished threads: dumping a live one is unsafe

    threading.Thread.run = run
    return profiles


def _dump_thread_profiles(profiles: list, directory: str, name: str) -> None:
    import pstats

    if not profiles:
        return
    stats = pstats.Stats(profiles[0])
    for prof in profiles[1:]:
        stats.add(prof)
    stats.dump_stats(os.path.join(directory, name))


def _profiled_worker_main(spec) -> None:
    """Runs instead of fastprod.sharded.worker.main in a spawned worker when the parent
    profiles: the worker's main thread and its finished threads, dumped at exit."""
    import cProfile

    directory = os.environ[PROFILE_ENV]
    threads = _install_thread_profiling()
    prof = cProfile.Profile()
    prof.enable()
    try:
        _ORIG_WORKER_MAIN(spec)
    finally:
        prof.disable()
        prof.dump_stats(os.path.join(directory, f"worker{spec.index}-main.prof"))
        _dump_thread_profiles(threads, directory, f"worker{spec.index}-threads.prof")


if __name__ == "__mp_main__" and os.environ.get(PROFILE_ENV):
    # A spawned worker imports this script as __mp_main__ before it unpickles its
    # Process object, whose target (fastprod.sharded.worker.main) is looked up by name:
    # replacing it here makes the worker run the profiled wrapper.
    import fastprod.sharded.worker as _worker_module

    _ORIG_WORKER_MAIN = _worker_module.main
    _worker_module.main = _profiled_worker_main


# ---- main -----------------------------------------------------------------------------------

def main() -> None:
    spec = json.loads(sys.argv[1])
    if spec.get("fastprod_root"):
        sys.path.insert(0, spec["fastprod_root"])  # before fastprod is first imported
    n = spec["records"]
    values = make_values(max(n, WARMUP_RECORDS), spec["value_size"])
    out = RUNNERS[spec["client"]](spec, values[:n] if n < len(values) else values)
    out["records"] = n
    if "fastprod" in sys.modules:
        out["fastprod_file"] = sys.modules["fastprod"].__file__
    out["payload_bytes"] = n * spec["value_size"]
    out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sys.stdout.write("\n" + json.dumps(out) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
