#!/usr/bin/env bash
# Proves that a separate project can use tandem: once through find_package against an
# installed copy, once through add_subdirectory of this source tree.
set -euo pipefail
build_dir=${1:?usage: install-check.sh <configured build dir>}
source_dir=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
for mode in find_package add_subdirectory; do
  args=(-DCMAKE_PREFIX_PATH="$work/prefix")
  [[ $mode == add_subdirectory ]] && args=(-DTANDEM_SOURCE_DIR="$source_dir")
  cmake -S "$source_dir/tests/install_consumer" -B "$work/$mode" -G Ninja -DCMAKE_BUILD_TYPE=Release "${args[@]}" >/dev/null
  cmake --build "$work/$mode" >/dev/null
  "$work/$mode/consumer"
  echo "install-check: $mode OK"
done
