# Thin wrapper around CMake so the README's commands stay short.
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: all deps build test test-asan bench fuzz clean install

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# include/xvlm.h, libxvlm.so, the xvlm program, xvlm.pc and the Python package under $(PREFIX)
# (staged under $(DESTDIR) when given).
PREFIX ?= /usr/local
install: build
	DESTDIR=$(DESTDIR) cmake --install $(BUILD) --prefix $(PREFIX)

# The test command of the README: builds, then runs every test but the slow learning runs.
test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE slow

# Learning runs of several CPU-minutes (a tiny X-VLM pretrained from scratch).
.PHONY: test-slow
test-slow: build
	cd $(BUILD) && ctest --output-on-failure -L slow

# Unit tests and fuzz smoke runs under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DXV_SANITIZE=ON -DXV_NATIVE=OFF
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -L 'unit|fuzz' -j $(JOBS)

# libFuzzer binaries (clang, ASan + UBSan) in $(BUILD)/fuzz-libfuzzer/; see fuzz/README.md.
fuzz: build
	cmake --build $(BUILD) --target fuzz

bench: build
	@for b in $(BUILD)/bench/bench_*; do echo "== $$b"; $$b; done

clean:
	rm -rf $(BUILD) build-asan

# The README's main command: dependencies, the xvlm program, the synthetic world,
# pretraining from scratch, zero-shot retrieval and grounding, pictures (scripts/demo.sh,
# docs/demo.md). demo-ablations adds the paper's Table 4 in miniature (about an hour).
# demo-all: every task (VQA, captioning, NLVR2 when their configs exist, Grad-CAM, two
# ablations), one summary table and out/demo/pictures/.
.PHONY: demo demo-ablations demo-all
demo:
	BUILD=$(BUILD) bash scripts/demo.sh

demo-ablations:
	BUILD=$(BUILD) bash scripts/demo.sh --ablations

demo-all:
	BUILD=$(BUILD) bash scripts/demo.sh --all
