#!/usr/bin/env bash
# The ffmpeg binaries the tests run with, printed as DEEPDREAM_TEST_FFMPEGS wants them
# (paths joined by ':'): the system's (Debian 12's 5.1, installed with apt-get where it is
# missing), ffmpeg 4.2 and 7.0 (the static builds inside imageio-ffmpeg 0.4.9 and 0.6.0,
# fetched from PyPI once and kept in ~/.cache/deepdream/ffmpegs) and the bundled one of the
# installed imageio-ffmpeg (9.x). Fails loudly if any of them cannot be had.
#
#   export DEEPDREAM_TEST_FFMPEGS=$(bash scripts/test_ffmpegs.sh .venv/bin/python)
set -euo pipefail
python=${1:-python3}
cache=${DEEPDREAM_HOME:-$HOME/.cache/deepdream}/ffmpegs
mkdir -p "$cache"
if ! command -v ffmpeg >/dev/null; then
    echo "installing the system's ffmpeg (apt-get)" >&2
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ffmpeg; } >&2
fi
paths=("$(command -v ffmpeg)")
for pair in 0.4.9:4.2 0.6.0:7.0; do
    wheel_version=${pair%%:*} ffmpeg_version=${pair##*:}
    binary="$cache/ffmpeg-$ffmpeg_version"
    if [ ! -x "$binary" ]; then
        tmp=$(mktemp -d)
        "$python" -m pip download -q --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
            --platform manylinux2010_x86_64 --python-version 3.11 \
            "imageio-ffmpeg==$wheel_version" -d "$tmp" >&2
        "$python" - "$tmp"/imageio_ffmpeg-*.whl "$binary" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    name = next(n for n in wheel.namelist() if "/binaries/ffmpeg" in n)
    with wheel.open(name) as src, open(sys.argv[2] + ".part", "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
        chmod +x "$binary.part" && mv "$binary.part" "$binary"
        rm -rf "$tmp"
    fi
    version_line=$("$binary" -version | sed -n 1p)
    [[ $version_line == "ffmpeg version $ffmpeg_version"* ]] \
        || { echo "$binary is not ffmpeg $ffmpeg_version: $version_line" >&2; exit 1; }
    paths+=("$binary")
done
paths+=("$("$python" -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')")
(IFS=:; echo "${paths[*]}")
