# Entry points: `make run` (main job on the synthetic world) and `make test` (the test suite).
# Both install missing Debian packages (when root), configure and build Release first.
BUILD ?= build
JOBS ?= $(shell nproc)
PACKAGES = libtorch-dev libgloo-dev libopenblas0-openmp libopencv-dev libpng-dev nlohmann-json3-dev \
  libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev \
  libeigen3-dev libzip-dev libssl-dev pkg-config ninja-build ccache cmake g++ python3-torch python3-torchvision python3-scipy python3-numpy chromium

.PHONY: setup configure build run test clean

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

clean:
	rm -rf $(BUILD)
