"""The benchmark script runs and prints its table (its figures are for BENCHMARKS.md, not
for tests)."""
import subprocess
import sys

from conftest import FIXTURES, ROOT


def test_benchmark_runs_on_a_small_net():
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "dream_bench.py"), "--size", "64x48",
         "--iterations", "1", "--octaves", "2", "--repeats", "1",
         "--deploy", str(FIXTURES / "tiny_googlenet.prototxt")],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "| deepdream.dream (fp32) |" in result.stdout and "| plain PyTorch |" in result.stdout
    assert "| the plain module as your own net (--model FILE.py:FACTORY) |" in result.stdout
    assert "GFLOP" in result.stdout
    # the default --precision bf16: its row, and its gradients' agreement at the seed's layers
    assert "| deepdream.dream (bf16) |" in result.stdout
    assert "| inception_5b/output |" in result.stdout.split("cosine similarity")[1]


def test_benchmark_of_real_weights_uses_the_structure_saved_with_them():
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "dream_bench.py"), "--size", "64x48",
         "--iterations", "1", "--octaves", "2", "--repeats", "1", "--skip-plain",
         "--precision", "", "--caffemodel", str(FIXTURES / "tiny_googlenet.caffemodel")],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "| deepdream.dream (fp32) |" in result.stdout
    assert "(bf16)" not in result.stdout             # --precision '': fp32 alone


def test_memory_benchmark_runs():
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "memory_bench.py"), "--size", "160x120",
         "--tiles", "64"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "| 64 |" in result.stdout and "| none |" in result.stdout
