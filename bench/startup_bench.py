#!/usr/bin/env python3
"""The one command's start-up (issue 32): seconds from ``python -m deepdream MOVIE -o OUT``
to its first dreamed frame on disk, for one or more checkouts of the project (this one, and
e.g. an earlier commit's worktree, for a before/after), run alternately in one session so
that the machine's load falls on each alike. The model is a full-size GoogLeNet with random
weights written as a caffemodel (``video_bench.write_random_model``: 27 MB, read and parsed
as the real 53 MB one is); the movie is samples/sample.mp4; the dream is light (2 octaves x 1
step at inception_4c/output, -p 160), so the figure is what comes before the dream. "cold":
a fresh $DEEPDREAM_HOME (no sha1 of the model remembered yet), "warm": the same one again.

    python bench/startup_bench.py [--checkout PATH ...] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from video_bench import write_random_model  # noqa: E402

SAMPLE = ROOT / "samples" / "sample.mp4"
DREAM = ["-l", "inception_4c/output", "-oct", "2", "-itr", "1", "-p", "160"]


def cpu_seconds(pid: int) -> float:
    """The CPU time (user and system) process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def first_frame_seconds(checkout: Path, model: Path, home: Path,
                        folder: Path) -> tuple[float, float]:
    """Seconds from starting the one command of ``checkout`` in ``folder`` until its first
    dreamed frame is on disk, and the CPU seconds its own process used by then (less
    sensitive to the machine's load; ffmpeg's are not counted). The run is then stopped."""
    out = folder / "out.mp4"
    work = folder / "work"
    env = dict(os.environ, PYTHONPATH=str(checkout), DEEPDREAM_HOME=str(home))
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "deepdream", str(SAMPLE), "-o", str(out),
                                "--work", str(work), "-t", str(model), *DREAM],
                               cwd=checkout, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    first = None
    try:
        while first is None:
            if process.poll() is not None:
                raise RuntimeError(f"{checkout}: the run ended: {process.stderr.read()[-800:]}")
            if (work / "dreamed" / "00000001.png").exists():   # a new --work: the job's own
                first = time.perf_counter() - started, cpu_seconds(process.pid)
            time.sleep(0.01)
    finally:
        process.kill()
        process.wait()
    return first


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkout", action="append", type=Path,
                   help="a checkout of the project (repeat for several; default: this one)")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    checkouts = args.checkout or [ROOT]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = write_random_model(tmp / "model")
        times = {(c, mode): [] for c in checkouts for mode in ("cold", "warm")}
        for round_ in range(args.repeat):
            for checkout in checkouts:
                home = tmp / f"home-{round_}-{checkouts.index(checkout)}"
                for mode in ("cold", "warm"):       # the same home: warm has the sha1
                    folder = tmp / f"run-{round_}-{checkouts.index(checkout)}-{mode}"
                    folder.mkdir()
                    times[(checkout, mode)].append(
                        first_frame_seconds(checkout, model, home, folder))
                    shutil.rmtree(folder)
    print(f"command to first dreamed frame, median of {args.repeat}: seconds of wall time "
          f"(CPU seconds of the command's process); load average at the end: "
          f"{os.getloadavg()[0]:.1f}")
    print("| checkout | cold | warm |")
    print("|---|---|---|")

    def median(key, which):
        return statistics.median(t[which] for t in times[key])
    for checkout in checkouts:
        cells = [f"{median((checkout, mode), 0):.2f} ({median((checkout, mode), 1):.2f})"
                 for mode in ("cold", "warm")]
        print(f"| {checkout} | {' | '.join(cells)} |")
    if len(checkouts) == 2:
        a, b = checkouts
        for mode in ("cold", "warm"):
            print(f"{mode}: {b.name} / {a.name} = "
                  f"{median((b, mode), 0) / median((a, mode), 0):.2f} wall, "
                  f"{median((b, mode), 1) / median((a, mode), 1):.2f} CPU")


if __name__ == "__main__":
    main()
