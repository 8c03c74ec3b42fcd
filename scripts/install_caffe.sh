#!/usr/bin/env bash
# Build real Caffe 1.0 (BVLC commit 9b89154, from the PyPI sdist "brocolli-caffe") with its
# Python wrapper, for `2_dreaming_time.py --engine caffe` and the engine parity tests.
#
#   bash scripts/install_caffe.sh [PYTHON]        # PYTHON defaults to .venv/bin/python
#   bash scripts/install_caffe.sh --print-path    # the folder to put on PYTHONPATH
#
# A CPU build: this sdist's CMakeLists defines CPU_ONLY for every file, so it cannot build
# Caffe's CUDA kernels (GPU users with a CUDA Caffe of their own can point PYTHONPATH at it;
# --gpu then calls caffe.set_mode_gpu()). The build is cached in
# $DEEPDREAM_HOME/caffe-build (default ~/.cache/deepdream/caffe-build): a second run takes
# seconds. At the end it prints how to put pycaffe on the path.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
home="${DEEPDREAM_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/deepdream}"
root="$home/caffe-build"
version="9.0.2"
src="$root/brocolli-caffe-$version"
build="$src/build"
if [ "${1:-}" = "--print-path" ]; then echo "$src/python"; exit 0; fi
python="${1:-$here/.venv/bin/python}"
mkdir -p "$root"

if [ -e "$src/python/caffe/_caffe.so" ]; then
  echo "pycaffe is already built in $src/python"
else
  # 1. build dependencies (Debian/Ubuntu package names)
  if command -v apt-get >/dev/null; then
    packages="build-essential cmake libboost-python-dev libboost-system-dev
      libboost-thread-dev libboost-filesystem-dev libboost-regex-dev libprotobuf-dev
      protobuf-compiler libgoogle-glog-dev libgflags-dev libhdf5-dev libopenblas-dev"
    missing=""
    for p in $packages; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
    if [ -n "$missing" ]; then
      sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
      $sudo apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
    fi
  else
    echo "install Caffe's build dependencies by hand (boost, protobuf, glog, gflags, hdf5, OpenBLAS)" >&2
  fi

  # 2. the source: Caffe 1.0 as the sdist brocolli-caffe
  if [ ! -d "$src" ]; then
    "$python" -m pip download --no-deps --no-binary :all: -q -d "$root" "brocolli-caffe==$version"
    tar -xzf "$root/brocolli-caffe-$version.tar.gz" -C "$root"
  fi

  # 3. configure and build the Python wrapper against this Python and its numpy.
  #    The sdist links "-lboost_python"; Debian names it after the Python version, so a
  #    link directory maps the plain name onto the right one.
  pyver=$("$python" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
  boost=""
  for candidate in /usr/lib/*/libboost_python"$pyver".so /usr/lib/libboost_python"$pyver".so; do
    [ -e "$candidate" ] && { boost="$candidate"; break; }
  done
  [ -n "$boost" ] || { echo "no libboost_python$pyver: install libboost-python-dev for Python $pyver" >&2; exit 1; }
  mkdir -p "$root/lib"
  ln -sf "$boost" "$root/lib/libboost_python.so"
  include=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  # Debian keeps HDF5's headers and libraries in a folder of their own; net.cpp includes
  # <gtest/gtest.h>, which the sdist ships in src/
  hdf5_include=""; hdf5_lib=""
  for candidate in /usr/include/hdf5/serial; do [ -d "$candidate" ] && hdf5_include="-I$candidate"; done
  for candidate in /usr/lib/*/hdf5/serial; do [ -d "$candidate" ] && hdf5_lib="-L$candidate"; done
  numpy=$("$python" -c 'import numpy; print(numpy.get_include())')
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCPU_ONLY=ON \
    -DBUILD_python=ON -DBUILD_docs=OFF -DUSE_OPENCV=OFF -DUSE_LEVELDB=OFF -DUSE_LMDB=OFF \
    -DPYTHON_INCLUDE_DIRS="$include" -DNUMPY_INCLUDE_DIR="$numpy" \
    -DCMAKE_CXX_FLAGS="$hdf5_include -I$src/src" \
    -DCMAKE_SHARED_LINKER_FLAGS="-L$root/lib $hdf5_lib" >"$root/cmake.log"
  cmake --build "$build" --target pycaffe -j "$(nproc)" >"$root/build.log" 2>&1 || {
    tail -30 "$root/build.log" >&2; echo "the build failed: see $root/build.log" >&2; exit 1; }
fi

# what pycaffe itself imports, beyond numpy, scipy, scikit-image and protobuf
"$python" -c "import six" 2>/dev/null || "$python" -m pip install -q six
"$python" -c "import sys; sys.path.insert(0, '$src/python'); import caffe; print('pycaffe', caffe.__file__)"
echo
echo "pycaffe is built. Put it on the path with:"
echo "  export PYTHONPATH=$src/python:\$PYTHONPATH"
