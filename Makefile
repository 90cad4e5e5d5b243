# The commands a person types. Each target installs what is missing first (scripts/install-deps).
#   make run    build Release and run `sluice serve` on etc/sluice.toml
#   make demo   build Release and watch sluice learn five simulated receivers' limits
#   make test   build Release and run every test (unit + end-to-end)
#   make asan   build with ASan+UBSan and run every test
#   make fuzz   build the libFuzzer targets (clang) and run each for FUZZ_SECONDS
#   make bench  build Release and run the benchmarks in bench/
SHELL := /bin/bash
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 60
CONFIG ?= etc/sluice.toml
CMAKE_FLAGS ?=

RELEASE := build/release
ASAN := build/asan
FUZZ := build/fuzz

.PHONY: all deps build run demo test unit asan fuzz bench clean

all: build

deps:
	@scripts/install-deps

$(RELEASE)/build.ninja:
	cmake -S . -B $(RELEASE) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: deps $(RELEASE)/build.ninja
	cmake --build $(RELEASE) -j $(JOBS)

run: build var/tls/cert.pem
	$(RELEASE)/sluice serve --config $(CONFIG)

# The simulator with five provider models, sluice routed to them, a campaign injected over
# HTTP; the terminal and the dashboard show what it learns (scripts/demo; DEMO_SECONDS).
demo: build
	scripts/demo

# A self-signed pair for the default config's STARTTLS, made once.
var/tls/cert.pem:
	mkdir -p var/tls
	openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=localhost" \
	  -keyout var/tls/key.pem -out var/tls/cert.pem 2>/dev/null

test: build
	cd $(RELEASE) && ctest --output-on-failure -j $(JOBS)

unit: build
	cd $(RELEASE) && ctest --output-on-failure -j $(JOBS) -L unit

$(ASAN)/build.ninja:
	cmake -S . -B $(ASAN) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=ON -DSLUICE_BENCH=OFF $(CMAKE_FLAGS)

# Every test, unit and end-to-end, against ASan+UBSan builds of the tests and of the binary.
asan: deps $(ASAN)/build.ninja
	cmake --build $(ASAN) -j $(JOBS)
	cd $(ASAN) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS)

$(FUZZ)/build.ninja:
	CXX=clang++ cmake -S . -B $(FUZZ) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_FUZZ=ON -DSLUICE_SANITIZE=ON $(CMAKE_FLAGS)

fuzz: deps $(FUZZ)/build.ninja
	cmake --build $(FUZZ) -j $(JOBS)
	scripts/run-fuzzers $(FUZZ)/fuzz $(FUZZ_SECONDS)

bench: build
	$(RELEASE)/bench/smtp_parsers_bench
	bench/injection.sh
	bench/relay.sh
	bench/queue_memory.sh
	bench/limits.sh
	bench/deadsite.sh

clean:
	rm -rf build
