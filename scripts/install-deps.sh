#!/usr/bin/env bash
# Installs the Debian packages tandem needs to build, test, benchmark and run the tour.
# Fast and silent when everything is present; uses sudo when not root.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config # toolchain
  googletest libgtest-dev libgmock-dev         # tests
  libbenchmark-dev libtbb-dev libboost-dev     # benchmarks and their peers (oneTBB, Boost.Asio)
  libcereal-dev libcpp-httplib-dev             # serialization; HTTP for the tour and examples
  gnuplot-nox python3                          # the tour's chart and its Python comparison
  clang libclang-rt-14-dev                     # thread-safety annotations; libFuzzer (make fuzz)
  util-linux                                   # setpriv: the hand-over test runs a setuid copy
)

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$package")
done
((${#missing[@]} == 0)) && exit 0

sudo=()
if ((EUID != 0)); then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
