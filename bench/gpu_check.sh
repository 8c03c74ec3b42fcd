#!/usr/bin/env bash
# The GPU checks of issue 16 in one run, for a lent CUDA machine (its python3 has torch with
# CUDA, numpy, scipy, Pillow, tqdm, pytest; a newer protobuf and ffmpeg-python can come as
# wheels in .whl/, installed to /tmp/site; nothing is fetched):
#   1. the golden and dream tests on the GPU (DEEPDREAM_TEST_DEVICE=cuda): Caffe's values, the
#      device-side pyramid against scipy;
#   2. the speed benchmark at 540x360 and 1920x1080 in fp32, bf16 and fp16, alone and in
#      batches of 4 and 8, with each precision's matmul peak and the launch-bound floor;
#   3. peak GPU memory of a 1080p and a 4K frame, with and without --tile;
#   4. frames a second of 2_dreaming_time.py end to end (decode, dream, write) at 1080p.
# Everything is also written to ${OUT:-/tmp}/gpu_check.log, each figure as it is measured.
# Each section has a time limit, so a slow one cannot take the others' time. The first run
# (2026-11-27, H200, with cuDNN autotuning every new shape, since turned off) reached the
# 1080p benchmark only after 8 minutes: if time is short, run the sections in two calls.
#
#   bash bench/gpu_check.sh [--quick]     (--quick: small sizes, to try the script on a CPU)
set -uo pipefail
export PYTHONUNBUFFERED=1
log="${OUT:-/tmp}/gpu_check.log"
python=${PYTHON:-python3}
if compgen -G ".whl/*.whl" >/dev/null; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
device=cuda sizes=("540x360:4,8:200x134" "1920x1080:4:") extra=(--agreement-iterations 1)
memory=(--size 1920x1080,3840x2160 --tiles 512) video=(--size 1920x1080 --frames 24)
if [ "${1:-}" = "--quick" ]; then
    device=cpu sizes=("96x64:2:") extra=(--iterations 1 --octaves 2 --repeats 1
                                         --agreement-iterations 1)
    memory=(--size 160x120 --tiles 64) video=(--size 160x120 --frames 3)
fi
exec > >(tee "$log") 2>&1
status=0
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null
"$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda,
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')"
echo "== $(date +%T) tests on $device"
DEEPDREAM_TEST_DEVICE=$device timeout 120 "$python" -m pytest -q -p no:cacheprovider \
    tests/test_engine_golden.py tests/test_dream.py \
    "tests/test_own_model.py::test_caffes_net_as_your_own_matches_caffes_numbers" || status=1
for entry in "${sizes[@]}"; do
    IFS=: read -r size batch floor <<<"$entry"
    echo "== $(date +%T) dream_bench $size on $device"
    timeout 240 "$python" bench/dream_bench.py --device "$device" --size "$size" \
        --precision bf16,fp16 \
        --batch "$batch" ${floor:+--floor "$floor"} "${extra[@]}" || status=1
done
echo "== $(date +%T) memory_bench on $device"
timeout 150 "$python" bench/memory_bench.py --device "$device" "${memory[@]}" || status=1
echo "== $(date +%T) video_bench on $device"
timeout 180 "$python" bench/video_bench.py --device "$device" --precision fp32,fp16 \
    "${video[@]}" \
    || status=1
echo "== gpu_check: $([ $status = 0 ] && echo passed || echo FAILED)"
exit $status
