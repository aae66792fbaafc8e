"""Replay throughput and peak memory on a simulated log of at least a million input events.

Prints JSON: input events, seconds, events/s, derived events, peak RSS (MiB). Usage:
    python bench/replay.py [--providers 300] [--days 12] [--log FILE]
The log is generated once (outside the timing) and the replay is timed in a fresh process, so the peak
memory is the replay's own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(log: Path, out: Path) -> None:
    from sn51.replay import replay_file

    t = time.perf_counter()
    lines, derived, refused = replay_file(log, out, progress=False)
    seconds = time.perf_counter() - t
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"input_events": lines, "derived_events": derived, "refused": refused,
                      "seconds": round(seconds, 2), "events_per_s": round(lines / seconds),
                      "peak_rss_mib": round(peak_mib, 1)}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--providers", type=int, default=300)
    ap.add_argument("--days", type=float, default=12)
    ap.add_argument("--log", type=Path)
    ap.add_argument("--child", nargs=2, type=Path)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    tmp = Path(tempfile.mkdtemp())
    log = args.log or tmp / "log.jsonl"
    if not log.exists():
        from sn51.sim import lines

        with log.open("w") as f:
            for line in lines(51, args.providers, args.days):
                f.write(line.text + "\n")
    done = subprocess.run([sys.executable, __file__, "--child", str(log), str(tmp / "out.jsonl")],
                          capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    result.update(target_events_per_s=50_000, target_peak_rss_mib=1024, log=str(log))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
