"""The benchmark scripts run and print tables whose figures make sense together: a row for
each path, precision, size and tile asked for, positive times, frames a second and ratios
that follow from the printed times, the same times as the progress lines, cosines from -1 to
1 at every seed layer. (The figures themselves are for BENCHMARKS.md: nothing here is timed
against a bound.)"""
import re
import subprocess
import sys

import pytest

from conftest import FIXTURES, ROOT
from deepdream.run.schedules import CUSTOM_LOOP

TINY = ["--size", "64x48", "--iterations", "1", "--octaves", "2", "--repeats", "1"]


def bench(name, *args):
    result = subprocess.run([sys.executable, str(ROOT / "bench" / name), *args],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def table(text: str, header: str) -> list[list[str]]:
    """The rows (their cells) of the markdown table of ``text`` whose header row begins
    with ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    assert lines[start + 1].startswith("|---|")
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def rounded(places: int) -> float:
    """Half a unit of the last of ``places`` decimals: how far a figure printed with them may
    be from the value it was rounded from."""
    return 0.5 * 10 ** -places + 1e-12


def check_speed_table(result, labels: list[str], plain: bool) -> dict[str, float]:
    """The speed table has exactly the rows ``labels``, in order, and its figures agree:
    frames/s = 1 / (s/frame), vs plain = plain's s/frame / s/frame, GFLOP/s = the work
    unit's GFLOP / (s/frame), each within the rounding of the printed figures; each
    deepdream.dream time is the one its progress line gave. Returns the s/frame by label."""
    out = result.stdout
    gflop = float(re.search(r"^work unit: 64x48, inception_4c/output, 1 iterations, "
                            r"2 octaves x1\.4: ([\d.]+) GFLOP$", out, re.M).group(1))
    rows = table(out, "path")
    assert [row[0] for row in rows] == labels
    seconds = {row[0]: float(row[1]) for row in rows}
    assert all(s > 0 for s in seconds.values()), seconds
    for label, s, per_second, ratio, gflops, share in rows:
        s, per_second = float(s), float(per_second)
        slack = rounded(3) / s ** 2              # how far 1/s moves within s's rounding
        assert abs(per_second - 1 / s) <= rounded(2) + slack, (label, s)
        if plain:
            base = seconds["plain PyTorch"]
            assert ratio.endswith("x")
            assert abs(float(ratio[:-1]) - base / s) <= 0.005 + base * slack + 0.0005 / s
        else:
            assert ratio == "-"
        # the work unit's GFLOP is printed rounded to a whole number
        assert float(gflops) >= 0
        assert abs(float(gflops) - gflop / s) <= 0.05 + 0.5 / s + gflop * slack, (label, s)
        assert re.fullmatch(r"\d+% of (fp32|bf16|fp16)", share), share
        precision = re.fullmatch(r"deepdream\.dream \((\w+)\)", label)
        if precision:             # the time its progress line gave as it was measured
            assert f"] {precision.group(1)}: {s:.3f} s/frame" in result.stderr
            assert share.endswith(f"of {precision.group(1)}")
    return seconds


def test_benchmark_runs_on_a_small_net():
    result = bench("dream_bench.py", *TINY, "--deploy",
                   str(FIXTURES / "tiny_googlenet.prototxt"))
    seconds = check_speed_table(result, [
        "deepdream.dream (fp32)", "deepdream.dream (bf16)",      # the default --precision bf16
        "the plain module as your own net (--model FILE.py:FACTORY)", "plain PyTorch"],
        plain=True)
    plain_row = next(row for row in table(result.stdout, "path") if row[0] == "plain PyTorch")
    assert plain_row[3] == "1.00x"
    # bf16's speed against fp32's, as the two times give it
    speed = float(re.search(r"^bf16: ([\d.]+)x the speed of fp32", result.stdout,
                            re.M).group(1))
    fp32, bf16 = seconds["deepdream.dream (fp32)"], seconds["deepdream.dream (bf16)"]
    assert speed == pytest.approx(fp32 / bf16, abs=0.005 + fp32 * rounded(3) / bf16 ** 2
                                  + rounded(3) / bf16)
    # its gradients' agreement: one row per seed layer, cosines from -1 to 1, every step of
    # a dream of 2 octaves at 2 steps an octave
    steps = int(re.search(r"\((\d+) steps an octave\)", result.stdout).group(1))
    rows = table(result.stdout.split("cosine similarity")[1], "layer")
    assert [row[0] for row in rows] == list(dict.fromkeys(CUSTOM_LOOP))
    for layer, low, median, count in rows:
        assert -1 <= float(low) <= float(median) <= 1, (layer, low, median)
        assert int(count) == 2 * steps


def test_benchmark_of_real_weights_uses_the_structure_saved_with_them():
    result = bench("dream_bench.py", *TINY, "--skip-plain", "--precision", "",
                   "--caffemodel", str(FIXTURES / "tiny_googlenet.caffemodel"))
    check_speed_table(result, ["deepdream.dream (fp32)"], plain=False)
    assert "(bf16)" not in result.stdout             # --precision '': fp32 alone
    assert "cosine similarity" not in result.stdout


def test_memory_benchmark_runs():
    result = bench("memory_bench.py", "--size", "160x120", "--tiles", "64")
    rows = table(result.stdout, "size")
    assert [row[:2] for row in rows] == [["160x120", "64"], ["160x120", "none"]]
    for _, _, gib, seconds in rows:
        assert 0 < float(gib) < 1024 and float(seconds) > 0, rows
