# The two commands: `make demo` and `make test`. Both install dependencies first.
BUILD ?= build
JOBS ?= 2
PREFIX ?= /usr/local
DESTDIR ?=
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo $(if $(CI),-DHERD_WERROR=ON,)

.PHONY: all deps build test demo install clean bench-placement bench-utilization bench-controller bench-vs-slurm bench-cli bench-soak

all: build

deps:
	scripts/install-deps

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS) -DCMAKE_INSTALL_PREFIX=$(PREFIX)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) --timeout 300

demo: build
	scripts/demo $(BUILD)

install: build
	DESTDIR=$(DESTDIR) cmake --install $(BUILD)

clean:
	rm -rf $(BUILD)

# Placement quality on the Alibaba 2023 GPU trace (../shared/traces), see bench/README.md: every
# pod list, 4 policies x 10 seeds (about an hour on 2 cores; PLACEMENT_LISTS=default for one list).
PLACEMENT_LISTS ?= all
.PHONY: bench-placement
bench-placement: build
	$(BUILD)/bin/placement_bench --trace-dir ../shared/traces/alibaba-gpu-v2023 --lists $(PLACEMENT_LISTS) \
	  --seeds 10 --cpu-unit 100 --out bench/results/placement
	@if [ -f bench/results/placement/placement.gp ] && command -v gnuplot >/dev/null; then \
	  gnuplot bench/results/placement/placement.gp && cp bench/results/placement/placement-*.svg bench/results/; \
	else echo "plot skipped (no gnuplot or no results): data in bench/results/placement/curve-*.tsv"; fi

# A synthetic month of a 30-researcher team: static per-user GPUs vs herd's quotas (bench/sim).
bench-utilization: build
	bench/sim/run-utilization $(BUILD)

# Controller speed with real processes on this machine (bench/controller).
bench-controller: build
	bench/controller/run $(BUILD)

# Many jobs through one herd-ctld: its memory, database size, listing and restart times.
bench-soak: build
	bench/controller/soak $(BUILD) | tee bench/results/soak.md

# herd beside Slurm (Debian's slurm-wlm) on this machine, same measurements, same run (bench/vs-slurm).
bench-vs-slurm: build
	bench/vs-slurm/run $(BUILD)

# What one `herd` process costs (start-up, one held submit, shared objects), optionally beside
# another build's herd in the same run: make bench-cli OTHER=/path/to/old/bin/herd (bench/cli).
bench-cli: build
	bench/cli/run $(BUILD) $(OTHER)
