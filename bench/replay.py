"""Replay throughput and peak memory on a simulated log of at least a million input events.

Prints JSON: input events, seconds, events/s, derived events, peak RSS (MiB, the replay process and its
benchmark-line worker added), medians over `--runs` replays with every run beside them. Usage:
    python bench/replay.py [--providers 300] [--days 13] [--log FILE] [--runs 3] [--sequential]
The log is generated once (outside the timing; removed at the end, unless given by `--log`) and each replay
is timed in a fresh process, so the peak memory is the replay's own. This machine is shared and noisy (the
same replay varies by up to a third): compare medians, and CPU seconds beside wall seconds.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(log: Path, out: Path, parallel: bool) -> None:
    from sn51.replay import replay_file

    t = time.perf_counter()
    lines, derived, refused = replay_file(log, out, progress=False, parallel=parallel)
    seconds = time.perf_counter() - t
    me, worker = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_seconds = me.ru_utime + me.ru_stime + worker.ru_utime + worker.ru_stime  # both processes
    # Peak memory: both processes' peaks added (the benchmark-line worker is a fork of this one; what they
    # share is counted twice, so this overstates).
    peak_mib = (me.ru_maxrss + worker.ru_maxrss) / 1024
    print(json.dumps({"input_events": lines, "derived_events": derived, "refused": refused,
                      "seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2),
                      "events_per_s": round(lines / seconds), "peak_rss_mib": round(peak_mib, 1),
                      "main_peak_rss_mib": round(me.ru_maxrss / 1024, 1),
                      "worker_peak_rss_mib": round(worker.ru_maxrss / 1024, 1)}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--providers", type=int, default=300)
    ap.add_argument("--days", type=float, default=13)  # 1.04 million events with 300 providers
    ap.add_argument("--log", type=Path)
    ap.add_argument("--runs", type=int, default=3, help="replays, each in a fresh process (medians reported)")
    ap.add_argument("--sequential", action="store_true", help="one process (no benchmark-line worker)")
    ap.add_argument("--child", nargs=2, type=Path)
    args = ap.parse_args()
    if args.child:
        child(*args.child, parallel=not args.sequential)
        return
    # The generated log (~300 MB for a million events) and the replays' output live in a temporary directory,
    # removed at the end: `--log` names a log to keep and reuse.
    with tempfile.TemporaryDirectory(prefix="sn51-bench-replay-") as tmp_name:
        tmp = Path(tmp_name)
        log = args.log or tmp / "log.jsonl"
        if not log.exists():
            from sn51.sim import lines

            with log.open("w") as f:
                for line in lines(51, args.providers, args.days):
                    f.write(line.text + "\n")
        runs = []
        for _ in range(args.runs):
            argv = [sys.executable, __file__, "--child", str(log), str(tmp / "out.jsonl")]
            done = subprocess.run(argv + (["--sequential"] if args.sequential else []), capture_output=True,
                                  text=True, check=True)
            runs.append(json.loads(done.stdout))
    first = runs[0]
    result = {k: first[k] for k in ("input_events", "derived_events", "refused")}
    for key in ("seconds", "cpu_seconds", "events_per_s", "peak_rss_mib"):
        result[key] = statistics.median(r[key] for r in runs)
    per_run = ("seconds", "cpu_seconds", "events_per_s", "peak_rss_mib", "main_peak_rss_mib", "worker_peak_rss_mib")
    result.update(runs=[{k: r[k] for k in per_run} for r in runs],
                  events_per_cpu_s=round(first["input_events"] / result["cpu_seconds"]),
                  target_events_per_s=50_000, target_peak_rss_mib=1024,
                  log=str(args.log) if args.log else f"generated: {args.providers} providers, {args.days} days",
                  million_events=first["input_events"] >= 1_000_000, parallel=not args.sequential,
                  meets_target=result["events_per_s"] >= 50_000 and result["peak_rss_mib"] < 1024)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
