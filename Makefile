# memtrace build.
#   make            build build/memtrace (installs missing dependencies first)
#   make demo       build and trace the bundled demo program
#   make test       build and run the unit and integration tests
#   make install    install to $(PREFIX)/bin (default /usr/local)
#   make V=1        show the commands
SHELL := /bin/bash
.SUFFIXES:
.DELETE_ON_ERROR:

PREFIX ?= /usr/local
BUILD := build
CC ?= gcc
CLANG ?= clang
BPFTOOL ?= bpftool
PYTHON ?= /usr/bin/python3

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
GIT_REV := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

CFLAGS ?= -O2 -g
override CFLAGS += -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Werror=implicit-function-declaration \
	-MMD -MP -Iinclude -Iuser -I$(BUILD) -DMT_VERSION='"$(VERSION) ($(GIT_REV))"'
BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_x86 -D__bpf__ -Wall \
	-Iinclude -Ivmlinux -MMD -MP
# memtrace's own allocator is jemalloc, linked in: with -a the probes sit
# in every process's C library, and memtrace's own malloc calls would trap
# into them (and be filtered out only after paying the trap)
LIBS := -lbpf -ldw -lelf -lz -liberty -lcapstone -lm -Wl,-Bstatic -ljemalloc_pic -Wl,-Bdynamic \
	-lpthread -ldl

# Pure modules: no BPF, no syscalls beyond stdio; linked into unit tests.
PURE_SRCS := user/cli.c user/procmaps.c user/report.c user/render.c user/json_writer.c \
	user/strutil.c user/pairmap.c user/probesite.c user/demangle.c user/ksyms.c user/cfi.c
SYS_SRCS := user/tracer.c user/elfsyms.c user/symbolizer.c user/target.c user/unwind.c
MAIN_SRC := user/main.c
USER_OBJS := $(patsubst user/%.c,$(BUILD)/user/%.o,$(PURE_SRCS) $(SYS_SRCS) $(MAIN_SRC))
PURE_OBJS := $(patsubst user/%.c,$(BUILD)/user/%.o,$(PURE_SRCS))

UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_OBJS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%.o,$(UNIT_SRCS))

PROG_C := $(filter-out tests/progs/lib%.c tests/progs/other_allocs.c tests/progs/nofp.c tests/progs/memo.c,$(wildcard tests/progs/*.c))
PROG_CXX := $(filter-out tests/progs/nofp_cxx.cpp,$(wildcard tests/progs/*.cpp))
# The same program on other allocators (tests/integration/test_allocators.py)
OTHER_ALLOCS := $(addprefix $(BUILD)/tests/progs/other_allocs_,jemalloc tcmalloc mimalloc musl_static glibc_static)
# Built without frame pointers: only the CFI unwinder sees their callers
NOFP_PROGS := $(addprefix $(BUILD)/tests/progs/,nofp nofp_nopie nofp_cxx libnofp_plugin.so memo memo_far)
PROGS := $(BUILD)/tests/progs/libmt_testlib.so $(OTHER_ALLOCS) $(NOFP_PROGS) $(BUILD)/tests/progs/prefixed $(patsubst tests/progs/%.c,$(BUILD)/tests/progs/%,$(PROG_C)) \
	$(patsubst tests/progs/%.cpp,$(BUILD)/tests/progs/%,$(PROG_CXX))
# Test programs: known flags, frame pointers, no tail calls (each allocating
# function must stay a frame), debug info for file:line.
PROG_FLAGS := -O2 -g -fno-omit-frame-pointer -fno-optimize-sibling-calls -pthread
NOFP_FLAGS := -O2 -g -fomit-frame-pointer -fno-optimize-sibling-calls -pthread

DEPS_STAMP := $(BUILD)/.deps-ok

# --preload's library (user/preload.c): no C library linked (it loads into
# any dynamically linked program), frame pointers (its wrappers pass their
# caller's frame), no builtins (calloc must not become a call to calloc),
# no tail calls (dlsym(RTLD_NEXT) looks after the object that called it:
# jumped to from a constructor, that would be the dynamic loader)
PRELOAD_LIB := $(BUILD)/libmemtrace-preload.so
PRELOAD_FLAGS := -O2 -g -fPIC -shared -nostdlib -fno-builtin -fno-omit-frame-pointer \
	-fno-optimize-sibling-calls -fno-stack-protector -fvisibility=hidden -Wall -Wextra -Wno-unused-parameter

BENCH_BINS := $(BUILD)/bench/churn $(BUILD)/bench/cxx_work

.PHONY: all deps demo test unit integration install clean format bench bench-smoke fuzz fuzz-smoke
all: $(BUILD)/memtrace

# Run scripts/setup.sh only when a tool or library is missing.
$(DEPS_STAMP): scripts/setup.sh
	$(Q)mkdir -p $(BUILD)
	$(Q)if command -v $(CLANG) >/dev/null && command -v $(BPFTOOL) >/dev/null \
		&& pkg-config --atleast-version=1.4 libbpf 2>/dev/null \
		&& pkg-config --atleast-version=0.192 libdw 2>/dev/null \
		&& pkg-config --exists criterion 2>/dev/null \
		&& [ -f /usr/include/libiberty/demangle.h ] \
		&& pkg-config --exists capstone 2>/dev/null \
		&& command -v musl-gcc >/dev/null && dpkg -s libclang-rt-dev >/dev/null 2>&1 && [ -e /usr/lib/x86_64-linux-gnu/libjemalloc.so ] \
		&& [ -e /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so ] \
		&& [ -e /usr/lib/x86_64-linux-gnu/libmimalloc.so ] \
		&& $(PYTHON) -c 'import pytest' 2>/dev/null; then :; \
	else \
		echo "  SETUP    dependencies missing: running scripts/setup.sh"; \
		bash scripts/setup.sh; \
	fi
	$(Q)touch $@

deps: $(DEPS_STAMP)

$(BUILD)/memtrace.bpf.o: bpf/memtrace.bpf.c $(DEPS_STAMP)
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/memtrace.skel.h: $(BUILD)/memtrace.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name memtrace_bpf > $@

$(BUILD)/user/tracer.o: $(BUILD)/memtrace.skel.h

$(BUILD)/user/%.o: user/%.c $(DEPS_STAMP)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/memtrace: $(USER_OBJS) | $(PRELOAD_LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LIBS) -o $@

$(PRELOAD_LIB): user/preload.c include/memtrace.h $(DEPS_STAMP)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(PRELOAD_FLAGS) -Iinclude user/preload.c -o $@

$(BUILD)/tests/unit/%.o: tests/unit/%.c $(DEPS_STAMP)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -DMT_SRCDIR='"$(CURDIR)"' -DMT_BUILDDIR='"$(CURDIR)/$(BUILD)"' -c $< -o $@

CFI_FIXTURES := $(addprefix $(BUILD)/tests/fixtures/,cfi_sample.so cfi_sample_nohdr.so cfi_sample_debug.so \
	cfi_dup.so cfi_huge.so)

$(BUILD)/tests/unit_tests: $(UNIT_OBJS) $(PURE_OBJS) | $(CFI_FIXTURES)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ -lcriterion -lcapstone -liberty -ldw -lelf -o $@

# Known CFI for tests/unit/test_cfi.c
$(BUILD)/tests/fixtures/cfi_sample.so: tests/fixtures/cfi_sample.S $(DEPS_STAMP)
	$(call msg,AS,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) -shared -nostdlib -Wl,--eh-frame-hdr $< -o $@

$(BUILD)/tests/fixtures/cfi_sample_nohdr.so: tests/fixtures/cfi_sample.S $(DEPS_STAMP)
	$(call msg,AS,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) -shared -nostdlib -Wl,--no-eh-frame-hdr $< -o $@

$(BUILD)/tests/fixtures/cfi_dup.so: tests/fixtures/cfi_crafted.S $(DEPS_STAMP)
	$(call msg,AS,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) -shared -nostdlib -Wl,--no-eh-frame-hdr $< -o $@

$(BUILD)/tests/fixtures/cfi_huge.so: tests/fixtures/cfi_crafted.S $(DEPS_STAMP)
	$(call msg,AS,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) -shared -nostdlib -Wl,--no-eh-frame-hdr -DHUGE $< -o $@

$(BUILD)/tests/fixtures/cfi_sample_debug.so: tests/fixtures/cfi_sample.S $(DEPS_STAMP)
	$(call msg,AS,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) -shared -nostdlib -DDEBUG_FRAME $< -o $@

# libFuzzer on the CFI reader (make fuzz FUZZ_SECONDS=N; CI runs a short one)
FUZZ_SECONDS ?= 600
$(BUILD)/tests/fuzz_cfi: tests/fuzz/fuzz_cfi.c user/cfi.c user/strutil.c user/pairmap.c $(DEPS_STAMP)
	$(call msg,FUZZ-CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) -g -O1 -std=gnu11 -D_GNU_SOURCE -Iinclude -Iuser -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		$(filter %.c,$^) -ldw -lelf -o $@

# CI: a short run, so a crash the seeds reach fails the build (log kept)
fuzz-smoke: $(BUILD)/tests/fuzz_cfi $(BUILD)/tests/fixtures/cfi_sample.so $(BUILD)/tests/progs/nofp
	$(Q)echo "  FUZZ     the CFI reader, 15 s (make fuzz for a long run)"
	$(Q)$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=15 >$(BUILD)/fuzz-smoke.log 2>&1 \
		|| { tail -50 $(BUILD)/fuzz-smoke.log; exit 1; }

fuzz: $(BUILD)/tests/fuzz_cfi $(BUILD)/tests/fixtures/cfi_sample.so $(BUILD)/tests/progs/nofp
	$(Q)mkdir -p $(BUILD)/fuzz-corpus $(BUILD)/fuzz-seeds
	$(Q)cp $(BUILD)/tests/fixtures/cfi_sample.so $(BUILD)/tests/progs/nofp tests/fuzz/regress/* \
		$(BUILD)/fuzz-seeds/
	$(Q)$(BUILD)/tests/fuzz_cfi -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=2048 \
		-print_final_stats=1 $(BUILD)/fuzz-corpus $(BUILD)/fuzz-seeds

$(BUILD)/tests/progs/%: tests/progs/%.c $(DEPS_STAMP)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(PROG_FLAGS) $< -o $@

$(BUILD)/tests/progs/lib%.so: tests/progs/lib%.c $(DEPS_STAMP)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(PROG_FLAGS) -fPIC -shared $< -o $@

$(BUILD)/tests/progs/other_allocs_jemalloc: tests/progs/other_allocs.c $(DEPS_STAMP)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(PROG_FLAGS) $< -o $@ -ljemalloc

$(BUILD)/tests/progs/other_allocs_tcmalloc: tests/progs/other_allocs.c $(DEPS_STAMP)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(PROG_FLAGS) $< -o $@ -ltcmalloc_minimal

$(BUILD)/tests/progs/other_allocs_mimalloc: tests/progs/other_allocs.c $(DEPS_STAMP)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(PROG_FLAGS) $< -o $@ -lmimalloc

$(BUILD)/tests/progs/other_allocs_musl_static: tests/progs/other_allocs.c $(DEPS_STAMP)
	$(call msg,MUSL-CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)musl-gcc -static $(filter-out -pthread,$(PROG_FLAGS)) $< -o $@

$(BUILD)/tests/progs/other_allocs_glibc_static: tests/progs/other_allocs.c $(DEPS_STAMP)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) -static $(PROG_FLAGS) $< -o $@

$(BUILD)/tests/progs/prefixed: tests/progs/other_allocs.c $(BUILD)/tests/progs/libmt_prefixed.so
	$(call msg,CC,$@)
	$(Q)$(CC) $(PROG_FLAGS) -DJE_PREFIX $< -L$(@D) -lmt_prefixed -Wl,-rpath,'$$ORIGIN' -o $@

$(BUILD)/tests/progs/uselib: tests/progs/uselib.c $(BUILD)/tests/progs/libmt_testlib.so
	$(call msg,CC,$@)
	$(Q)$(CC) $(PROG_FLAGS) $< -L$(@D) -lmt_testlib -Wl,-rpath,'$$ORIGIN' -o $@

$(BUILD)/tests/progs/nofp: tests/progs/nofp.c $(DEPS_STAMP)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(NOFP_FLAGS) -pie -fPIE $< -o $@ -ldl

$(BUILD)/tests/progs/nofp_nopie: tests/progs/nofp.c $(DEPS_STAMP)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(NOFP_FLAGS) -no-pie -fno-PIE $< -o $@ -ldl

$(BUILD)/tests/progs/memo: tests/progs/memo.c $(DEPS_STAMP)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(NOFP_FLAGS) $< -o $@

$(BUILD)/tests/progs/memo_far: tests/progs/memo.c $(DEPS_STAMP)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(NOFP_FLAGS) -DFAR=6000 $< -o $@

$(BUILD)/tests/progs/libnofp_plugin.so: tests/progs/libnofp_plugin.c $(DEPS_STAMP)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(NOFP_FLAGS) -fPIC -shared $< -o $@

$(BUILD)/tests/progs/nofp_cxx: tests/progs/nofp_cxx.cpp $(DEPS_STAMP)
	$(call msg,CXX,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CXX) $(NOFP_FLAGS) $< -o $@

$(BUILD)/tests/progs/%: tests/progs/%.cpp $(DEPS_STAMP)
	$(call msg,CXX,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CXX) $(PROG_FLAGS) $< -o $@

$(BUILD)/bench/churn: bench/churn.c $(DEPS_STAMP)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) -O2 -g -fno-omit-frame-pointer -pthread $< -o $@

$(BUILD)/bench/cxx_work: bench/cxx_work.cpp $(DEPS_STAMP)
	$(call msg,CXX,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CXX) -O2 -g $< -o $@

# Benchmarks: several minutes; see docs/benchmarks.md.
bench: $(BUILD)/memtrace $(BENCH_BINS)
	$(PYTHON) bench/run.py $(BENCH_ARGS)

# What CI runs: the harness end to end on tiny sizes (not a measurement).
bench-smoke: $(BUILD)/memtrace $(BENCH_BINS)
	$(Q)echo "  BENCH    harness smoke run (tiny sizes, not a measurement)"
	$(Q)$(PYTHON) bench/run.py --small --reps 1 --out $(BUILD)/bench-smoke >/dev/null 2>$(BUILD)/bench-smoke.log \
		|| { cat $(BUILD)/bench-smoke.log; exit 1; }

demo: $(BUILD)/memtrace $(BUILD)/tests/progs/demo
	@echo "memtrace: tracing the bundled demo (tests/progs/demo.c)"
	$(BUILD)/memtrace --min-age 0 -- $(BUILD)/tests/progs/demo

unit: $(BUILD)/tests/unit_tests
	$(Q)cd tests && ../$(BUILD)/tests/unit_tests --jobs 1

integration: $(BUILD)/memtrace $(PROGS)
	$(Q)$(PYTHON) -m pytest -q -p no:cacheprovider tests/integration

test: $(BUILD)/memtrace $(BUILD)/tests/unit_tests $(PROGS) $(BENCH_BINS)
	$(Q)$(MAKE) --no-print-directory bench-smoke
	$(Q)$(MAKE) --no-print-directory unit
	$(Q)$(MAKE) --no-print-directory fuzz-smoke
	$(Q)$(MAKE) --no-print-directory integration

install: $(BUILD)/memtrace
	install -D -m 0755 $(BUILD)/memtrace $(DESTDIR)$(PREFIX)/bin/memtrace
	install -D -m 0755 $(PRELOAD_LIB) $(DESTDIR)$(PREFIX)/lib/memtrace/libmemtrace-preload.so

# Formats the lines changed since HEAD (kernel practice: the tree's
# hand-aligned comments and wrapping are not rewritten wholesale).
format:
	git clang-format HEAD -- bpf user include tests/unit tests/progs

clean:
	rm -rf $(BUILD)

-include $(wildcard $(BUILD)/user/*.d $(BUILD)/tests/unit/*.d $(BUILD)/*.d)
