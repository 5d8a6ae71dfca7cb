# vhu: top-level wrapper around meson/ninja.
#   make          build (build/)
#   make check    set up peers, then unit, pair, bad-input, interop, sanitizer and fuzz suites
#   make fuzz     every libFuzzer harness for FUZZ_SECONDS (default 600) each, with exec counts
#   make bench    side-by-side benchmarks against DPDK and qemu-storage-daemon (make bench BENCH_SECS=5)
#   make demo     vhu-net + a QEMU guest pinging through it
#   make install  PREFIX=/usr/local DESTDIR=
PREFIX ?= /usr/local
BUILD ?= build
FUZZ_JOBS ?= 1
FUZZ_SECONDS ?= 600
MESON_OPTS ?=

all: $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(BUILD)/build.ninja:
	meson setup $(BUILD) --prefix=$(PREFIX) $(MESON_OPTS)

setup:
	./scripts/setup.sh

check: setup
	./scripts/check.sh

bench: setup all
	./bench/run.sh
	BENCH_LOOP=1 ./bench/run.sh
	BENCH_LOOP=1 BENCH_DPDK_FWD=io ./bench/run.sh
	./bench/fe.sh
	./bench/blk.sh
	./bench/log.sh
	./bench/iommu.sh
	./bench/migrate.sh
	./bench/kernel.sh
	./bench/vdpa.sh
	./bench/tcp.sh

fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) ./scripts/fuzz.sh

demo: setup all
	./scripts/demo.sh

install: all
	DESTDIR=$(DESTDIR) meson install -C $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	./scripts/format-check.sh

clean:
	rm -rf build build-asan build-tsan build-fuzz build-nouring out

.PHONY: all setup check fuzz bench demo install format format-check clean
