# The README's commands. Each target installs missing Debian packages, configures, builds, runs.
#   make tour     the main job: tandem demonstrates itself on this machine
#   make test     every test suite (release build)
#   make bench    benchmarks and side-by-side runs against peers; ends with the RATIO lines
#   make sanitize the test suites under ASan+UBSan and under TSan
#   make fuzz     every libFuzzer target for FUZZ_SECONDS (60) each, clang with ASan+UBSan
#   make soak     a long mixed run under faults, SOAK_MINUTES (10) long; not in CI
#   make install-check   builds a consumer against the installed package and via add_subdirectory

JOBS ?= 2
CMAKE_EXTRA := $(if $(filter true,$(CI)),-DTANDEM_WERROR=ON,)

.PHONY: all deps tour test bench sanitize asan tsan fuzz soak install-check examples clean

all: test

deps:
	@bash scripts/install-deps.sh

build/%/build.ninja: | deps
	cmake --preset $* $(CMAKE_EXTRA) >/dev/null

release debug asan tsan: %: build/%/build.ninja
	cmake --build --preset $* -j $(JOBS)

tour: release
	build/release/tour/tandem-tour --out tour-output

test: release
	ctest --preset release

bench: release
	bash bench/run.sh build/release

sanitize: asan tsan
	ctest --preset asan
	ctest --preset tsan

fuzz: build/fuzz/build.ninja
	cmake --build --preset fuzz -j $(JOBS)
	bash scripts/fuzz.sh build/fuzz

soak: release
	mkdir -p soak-output
	build/release/soak/tandem-soak --minutes $(or $(SOAK_MINUTES),10) | tee soak-output/soak.txt

install-check: release
	bash scripts/install-check.sh build/release

clean:
	rm -rf build tour-output bench-output fuzz-output soak-output
