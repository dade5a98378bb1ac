# dlmem: the two commands.
#   make demo   install what is missing, build (Release), train LeNet-5 on Fashion-MNIST
#   make test   install what is missing, build, run the test suite
# Also: make build, make bench, make asan (ASan+UBSan tests), make tsan, make fuzz, make install-python, make clean.

BUILD ?= build/release
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all deps build demo test bench asan tsan fuzz clean install-python

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) > /dev/null
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	$(BUILD)/dlmem train --model lenet5 --dataset fashion-mnist --epochs 2 --batch 64 --threads $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900

bench: build
	@bash scripts/install-deps.sh --bench
	@bash bench/run.sh $(BUILD)

asan: deps
	cmake --preset asan > /dev/null && cmake --build --preset asan -j $(JOBS) && ctest --preset asan -j $(JOBS)

tsan: deps
	cmake --preset tsan > /dev/null && cmake --build --preset tsan -j $(JOBS) && ctest --preset tsan -j $(JOBS)

# Every parser's libFuzzer target for FUZZ_SECONDS each (make test runs 20 s of each).
FUZZ_SECONDS ?= 300
fuzz: build
	bash scripts/fuzz.sh . $(BUILD)/fuzz $(FUZZ_SECONDS) $(BUILD)/dlmem

# The Python package into the user site (python3 -m site --user-site): a .pth file that
# points at the build's python/ folder.
install-python: build
	@site=$$(/usr/bin/python3 -m site --user-site) && mkdir -p "$$site" && \
	  echo "$(abspath $(BUILD))/python" > "$$site/dlmem.pth" && echo "dlmem: $$site/dlmem.pth -> $(abspath $(BUILD))/python"

clean:
	rm -rf build
