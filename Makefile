# Entry points: `make run` (main job on the synthetic world) and `make test` (the test suite, then a short
# run of every fuzz target). Both install missing Debian packages (when root), configure and build first.
BUILD ?= build
JOBS ?= $(shell nproc)
# The fuzz targets (fuzz/): a separate clang build with ASan + UBSan + libFuzzer. `make test FUZZ=0` skips them.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 20
FUZZ ?= 1
PACKAGES = libtorch-dev libgloo-dev libopenblas0-openmp libopencv-dev libopencv-contrib-dev libpng-dev nlohmann-json3-dev \
  libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev \
  libeigen3-dev libspectra-dev libzip-dev libssl-dev pkg-config ninja-build ccache cmake g++ python3-torch python3-torchvision python3-scipy python3-numpy python3-pil chromium \
  clang libclang-rt-14-dev

.PHONY: setup configure build run test fuzz-build fuzz-test clean

setup:
	@missing=""; for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

configure: setup
	@[ -f $(BUILD)/build.ninja ] || cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release

build: configure
	cmake --build $(BUILD) -j $(JOBS)

run: build
	bash tools/run_main.sh $(BUILD)

test: build
	cd $(BUILD) && ctest --output-on-failure -j 2 $(CTEST_ARGS)
	@[ "$(FUZZ)" = 0 ] || $(MAKE) --no-print-directory fuzz-test

# Configured every time so that FUZZ_SECONDS takes effect; the compiler is fixed at the first configure.
fuzz-build: setup
	CC=clang CXX=clang++ cmake -S fuzz -B $(FUZZ_BUILD) -G Ninja -DLESSEG_FUZZ_SECONDS=$(FUZZ_SECONDS) >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS)

# Each target for FUZZ_SECONDS on its seeds; fails on any crash, sanitizer report or stray exception.
fuzz-test: fuzz-build
	cd $(FUZZ_BUILD) && ctest --output-on-failure -j 2
	@awk '/^[0-9]+\/[0-9]+ Test: /{t=$$3} /^stat::number_of_executed_units:/{n=$$2} \
	  /^stat::average_exec_per_sec:/{printf "%-18s %9d inputs, %6d/s, 0 crashes\n", t, n, $$2}' \
	  $(FUZZ_BUILD)/Testing/Temporary/LastTest.log

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD)
