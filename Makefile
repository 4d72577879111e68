# The QRazor engine: `make` builds ./run, `make run` tells a story, `make test` checks
# everything. `make help` lists all targets.

CC       ?= cc
CXX      ?= c++
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
CXXFLAGS ?= $(OPT) -g
WARN     := -Wall -Wextra
# Float results must not depend on the compiler: no contraction of a * b + c into an FMA
# (clang does it by default, gcc does not), so every compiler rounds as the source says.
FPFLAGS  := -ffp-contract=off
CPPFLAGS += -I. -D_POSIX_C_SOURCE=200809L -MMD -MP
LDLIBS   += -lsentencepiece -lpthread -lm

# macOS: the system's declarations beyond POSIX (sysctlbyname, madvise), and Homebrew's
# sentencepiece (brew install sentencepiece) where Homebrew is.
ifeq ($(shell uname -s),Darwin)
BREW_PREFIX := $(shell brew --prefix 2>/dev/null)
SP_INCLUDE  := $(if $(BREW_PREFIX),-I$(BREW_PREFIX)/include)
CPPFLAGS    += -D_DARWIN_C_SOURCE $(SP_INCLUDE)
LDFLAGS     += $(if $(BREW_PREFIX),-L$(BREW_PREFIX)/lib)
endif

# Out-of-tree objects: build/ normally, build/asan/ for the sanitizer build.
BUILD    ?= build

ENGINE_SRC := $(wildcard engine/*.c engine/commands/*.c kernels/*.c kernels/x86/*.c kernels/arm/*.c tokenizer/*.c weights/*.c)

# The SIMD kernels are compiled for their instruction sets file by file; the rest of the
# program stays baseline (x86-64, or ARMv8.0 with NEON) and chooses kernels at run time
# (kernels/simd.c). The files of the other architecture compile to nothing.
TARGET_MACHINE := $(shell $(CC) -dumpmachine)
ifneq (,$(findstring x86_64,$(TARGET_MACHINE)))
$(BUILD)/kernels/x86/avx2.o: SIMD_FLAGS := -mavx2 -mfma
$(BUILD)/kernels/x86/avx512.o: SIMD_FLAGS := -mavx2 -mfma -mavx512f -mavx512cd -mavx512bw -mavx512dq -mavx512vl -mavx512vnni
endif
# AArch64 (aarch64-linux-gnu, or arm64-apple-darwin): NEON is baseline, the dot product and
# the int8 matrix multiply not.
ifneq (,$(filter aarch64% arm64%,$(TARGET_MACHINE)))
$(BUILD)/kernels/arm/dotprod.o: SIMD_FLAGS := -march=armv8.2-a+dotprod
$(BUILD)/kernels/arm/i8mm.o: SIMD_FLAGS := -march=armv8.2-a+dotprod+i8mm
endif
# The sentencepiece shim, the one C++ file (make test-arm links a stub instead).
SHIM_OBJ   := $(BUILD)/tokenizer/sp_shim.o
TEST_SRC   := $(filter-out tests/synth_main.c tests/logits_digest.c,$(wildcard tests/*.c))

ENGINE_OBJ := $(ENGINE_SRC:%.c=$(BUILD)/%.o) $(SHIM_OBJ)
TEST_OBJ   := $(TEST_SRC:%.c=$(BUILD)/%.o)

.PHONY: all run test test-emulated test-arm test-asan test-tsan test-compilers fuzz fuzz-smoke fuzz-build accuracy bench docs check-docs check-accuracy check-unicode deps clean help
.DEFAULT_GOAL := all

all: $(BUILD)/run
	@cp -f $(BUILD)/run run

help:
	@echo "make            build ./run"
	@echo "make run        build, then tell one story in fp32 and in W4A4 with the embedded model"
	@echo "make test       build and run the test suite (then its every_level tests, emulated)"
	@echo "make test-emulated  only the emulated pass: every SIMD level checked on any CPU"
	@echo "make test-arm   the kernel, GEMM, forward, rotation and reference tests on AArch64, under qemu"
	@echo "make test-asan  the test suite under AddressSanitizer + UndefinedBehaviorSanitizer"
	@echo "make test-tsan  the test suite under ThreadSanitizer"
	@echo "make test-compilers  gcc and clang builds must give bit-identical logits"
	@echo "make fuzz       run every libFuzzer harness (tests/fuzz/) for FUZZ_TIME seconds (600)"
	@echo "make fuzz-smoke the same for 30 s each (CI)"
	@echo "make accuracy   regenerate docs/ACCURACY.md (every mode on the TinyStories dev text)"
	@echo "make bench      regenerate docs/PERFORMANCE.md (tokens/s of fp32, w8a16, qrazor)"
	@echo "make docs       regenerate docs/HOW_IT_WORKS.md from the explain mode"
	@echo "make check-docs check that docs/HOW_IT_WORKS.md is what the code makes now"
	@echo "make check-accuracy  the same for docs/ACCURACY.md (minutes)"
	@echo "make check-unicode   tokenizer/unicode_tables.c is what the Unicode database says"
	@echo "make clean      remove build products"

# ---------------------------------------------------------------- build

$(BUILD)/%.o: %.c $(BUILD)/.deps-ok
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(WARN) $(FPFLAGS) $(CPPFLAGS) $(CFLAGS) $(SIMD_FLAGS) -c $< -o $@

$(BUILD)/%.o: %.cpp $(BUILD)/.deps-ok
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 $(WARN) $(FPFLAGS) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

$(BUILD)/run: $(BUILD)/run.o $(ENGINE_OBJ)
	$(CXX) $(CXXFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/run_tests: $(TEST_OBJ) $(ENGINE_OBJ)
	$(CXX) $(CXXFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/logits_digest: $(BUILD)/tests/logits_digest.o $(ENGINE_OBJ)
	$(CXX) $(CXXFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/synth_model: $(BUILD)/tests/synth_main.o $(BUILD)/tests/synth_model.o
	$(CC) $(CFLAGS) $(LDFLAGS) $^ -o $@

# ---------------------------------------------------------------- every level on any CPU
# The emulated build: the SIMD kernel files and their dispatcher compiled a second time,
# with SIMD_EMULATED and SIMDe's portable intrinsics (tests/simde/) instead of the CPU's,
# into $(BUILD)/emu/, and linked with the other objects as they are. It holds every level
# of every architecture, runnable on any CPU; make test runs its every_level tests.
SIMD_SRC := $(wildcard kernels/x86/*.c kernels/arm/*.c) kernels/simd.c
EMU_OBJ  := $(SIMD_SRC:%.c=$(BUILD)/emu/%.o)
EMU_ENGINE_OBJ := $(filter-out $(SIMD_SRC:%.c=$(BUILD)/%.o),$(ENGINE_OBJ)) $(EMU_OBJ)

# (-Wno-psabi: gcc notes that 64-byte vectors pass differently since gcc 4.6; SIMDe's do.
# -fwrapv: SIMDe's portable code adds lanes as signed C integers, which wrap in the
# instructions they stand for and overflow in C; make test-asan's sanitizer stops at that.)
$(BUILD)/emu/kernels/x86/%.o: SIMDE_HEADER := -include tests/simde/x86.h -Wno-psabi -fwrapv
$(BUILD)/emu/kernels/arm/%.o: SIMDE_HEADER := -include tests/simde/arm.h -fwrapv
$(BUILD)/emu/%.o: %.c $(BUILD)/.deps-ok
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(WARN) $(FPFLAGS) $(CPPFLAGS) $(CFLAGS) -DSIMD_EMULATED $(SIMDE_HEADER) -c $< -o $@

$(BUILD)/emu/run: $(BUILD)/run.o $(EMU_ENGINE_OBJ)
	$(CXX) $(CXXFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/emu/run_tests: $(TEST_OBJ) $(EMU_ENGINE_OBJ)
	$(CXX) $(CXXFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---------------------------------------------------------------- dependencies
# libsentencepiece-dev is the only library. Install it with apt-get when it is missing and
# we can (root, or sudo without a password); otherwise say exactly what to install. The
# test suite installs nothing more (it renders an SVG with rsvg-convert and reads objects
# with binutils' nm where installed, and says "not run" where not).
define apt_install
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then SUDO=; \
	elif command -v apt-get >/dev/null && sudo -n true 2>/dev/null; then SUDO=sudo; \
	else echo "error: please install $(1) (Debian/Ubuntu: sudo apt-get install $(1))"; exit 1; fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	$$SUDO apt-get install -y --no-install-recommends $(1) || \
	{ $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends $(1); } || exit 1
endef

$(BUILD)/.deps-ok:
	@mkdir -p $(BUILD)
	@if ! echo '#include <sentencepiece_processor.h>' | $(CXX) -std=c++17 $(SP_INCLUDE) -x c++ -fsyntax-only - 2>/dev/null; then \
	  if [ "$$(uname -s)" = Darwin ]; then echo "error: sentencepiece not found: brew install sentencepiece"; exit 1; fi; \
	  echo "sentencepiece headers not found: installing libsentencepiece-dev"; \
	  $(call apt_install,libsentencepiece-dev); \
	fi
	@touch $@

# SIMDe (header-only, libsimde-dev) for the emulated test build only: installed the same
# way when missing; where it cannot be, the emulated pass says so and does not run.
have_simde = echo '\#include <simde/x86/avx512.h>' | $(CC) -x c -fsyntax-only - 2>/dev/null

deps: $(BUILD)/.deps-ok

# ---------------------------------------------------------------- use and test

# The first run: one prompt, greedy, through float32 and then through W4A4 with INT8 keys
# (-ctk i8: of the cache types, the one docs/ACCURACY.md finds repairs most of the loss).
RUN_ARGS := models/stories260K.bin -i "Once upon a time" -n 100 -t 0
run: all
	@echo "fp32, nothing quantized:"
	@./run $(RUN_ARGS) -q fp32
	@echo; echo "qrazor -ctk i8, 4-bit weights, activations and values, INT8 keys:"
	@./run $(RUN_ARGS) -q qrazor -ctk i8
	@echo; echo "They differ: a 260K-parameter model loses far more to 4 bits than a 7B one."

# The suite drives the program it was built with (so test-asan checks the asan build). Then
# the emulated pass: the tests that check every SIMD level, in the emulated build, where
# every level of every architecture runs (the levels this CPU has run natively in the
# first pass too). It fails when a level is checked by no test. Without SIMDe it prints
# why it did not run, and fails only when REQUIRE_EMULATION=1 (CI sets it).
test: $(BUILD)/run $(BUILD)/run_tests
	$(BUILD)/run_tests --run $(BUILD)/run
	@$(MAKE) --no-print-directory test-emulated

test-emulated:
	@if ! $(have_simde); then \
	  echo "SIMDe headers not found: installing libsimde-dev"; \
	  ( $(call apt_install,libsimde-dev) ) || true; \
	fi; \
	if $(have_simde); then \
	  $(MAKE) --no-print-directory $(BUILD)/emu/run $(BUILD)/emu/run_tests && \
	  echo "emulated pass: every SIMD level, through SIMDe" && \
	  $(BUILD)/emu/run_tests --run $(BUILD)/emu/run --every-level every_level; \
	else \
	  echo "not run: the emulated pass (every SIMD level on any CPU) needs SIMDe: apt-get install libsimde-dev"; \
	  [ "$(REQUIRE_EMULATION)" != 1 ]; \
	fi

# ---------------------------------------------------------------- ARM under qemu
# The kernel, GEMM, forward, rotation and reference tests (every NEON level against the scalar
# definition, the golden forward passes, 1 to 3 threads) on AArch64: cross-built with
# gcc-aarch64-linux-gnu into build/arm/ and run under qemu-aarch64 once per CPU model,
# `max` (with the dot product and the int8 matrix multiply: the i8mm level must be found,
# and it and the levels below it checked) and `cortex-a72` (ARMv8.0, Raspberry Pi 4: neon). Linked statically: Debian 12's qemu-aarch64
# hangs dynamically linked programs in pthread_create. Debian has no static arm64
# sentencepiece, so the shim is a stub (tests/arm/); the tokenizer and command-line tests
# stay with the native suite.
ARM_BUILD := build/arm
ARM_TESTS := kernels_ gemm_ forward_ rotation_ reference_equals
ARM_CPUS  := max:i8mm cortex-a72:neon
test-arm:
	@command -v aarch64-linux-gnu-gcc >/dev/null && command -v aarch64-linux-gnu-g++ >/dev/null && \
	  command -v qemu-aarch64 >/dev/null || { \
	  echo "cross compiler or qemu-aarch64 not found: installing them"; \
	  $(call apt_install,gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user); }
	@mkdir -p $(ARM_BUILD) && [ -f $(ARM_BUILD)/.deps-ok ] || touch $(ARM_BUILD)/.deps-ok # needs no sentencepiece
	$(MAKE) --no-print-directory BUILD=$(ARM_BUILD) CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ \
	  LDFLAGS=-static LDLIBS="-lpthread -lm" SHIM_OBJ=$(ARM_BUILD)/tests/arm/sp_shim_stub.o \
	  $(ARM_BUILD)/run $(ARM_BUILD)/run_tests
	@for model in $(ARM_CPUS); do \
	  cpu=$${model%%:*} level=$${model#*:}; \
	  echo "qemu-aarch64 -cpu $$cpu: $(ARM_TESTS)"; \
	  qemu-aarch64 -cpu $$cpu $(ARM_BUILD)/run_tests --run $(ARM_BUILD)/run --every-level $(ARM_TESTS) \
	    > $(ARM_BUILD)/test-$$cpu.log; status=$$?; cat $(ARM_BUILD)/test-$$cpu.log; \
	  [ $$status = 0 ] || exit 1; \
	  grep -q "$$level native" $(ARM_BUILD)/test-$$cpu.log || \
	    { echo "error: -cpu $$cpu: the $$level level was not detected and checked"; exit 1; }; \
	done

# The whole suite again, every object rebuilt with the sanitizers into build/asan/.
SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
test-asan:
	$(MAKE) BUILD=build/asan OPT="-O1 $(SAN)" LDFLAGS="$(SAN)" test

# Float results must not depend on the compiler: the logits of every golden model in
# every mode, at every SIMD level this CPU runs, built with gcc and with clang, must be
# identical to the bit.
test-compilers:
	$(MAKE) BUILD=build/cc-gcc CC=gcc CXX=g++ build/cc-gcc/logits_digest
	$(MAKE) BUILD=build/cc-clang CC=clang CXX=clang++ build/cc-clang/logits_digest
	build/cc-gcc/logits_digest > build/cc-gcc/digest.txt
	build/cc-clang/logits_digest > build/cc-clang/digest.txt
	cmp build/cc-gcc/digest.txt build/cc-clang/digest.txt
	@echo "gcc and clang give bit-identical logits ($$(wc -l < build/cc-gcc/digest.txt) level/model/mode triples," \
	  "levels: $$(awk '{print $$2}' build/cc-gcc/digest.txt | sort -u | paste -sd' '))"

# ---------------------------------------------------------------- fuzzing
# libFuzzer harnesses over every parser (tests/fuzz/README.md), built with clang into
# build/fuzz/, every object instrumented, with AddressSanitizer and UBSan.
FUZZ_HARNESSES := checkpoint qrz tokenizer tokenizer_json safetensors hf_config eval_text cli
FUZZ_SAN  := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_TIME ?= 600

$(BUILD)/tests/fuzz/%.o: CPPFLAGS += -D_GNU_SOURCE
$(BUILD)/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(ENGINE_OBJ)
	$(CXX) $(CXXFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

fuzz-build:
	$(MAKE) BUILD=build/fuzz CC=clang CXX=clang++ OPT="-O1 $(FUZZ_SAN) -fsanitize=fuzzer-no-link" \
	  LDFLAGS="$(FUZZ_SAN) -fsanitize=fuzzer" $(FUZZ_HARNESSES:%=build/fuzz/fuzz_%)

fuzz: fuzz-build
	tests/fuzz/run.sh $(FUZZ_TIME)

fuzz-smoke: fuzz-build
	tests/fuzz/run.sh 30

# The whole suite again under ThreadSanitizer, into build/tsan/ (the thread pool, the
# threaded matmuls and forward passes, and the program the suite runs, threaded by
# default); then a stories15M-shape model, whose matmuls are large enough to be split,
# quantized at load, prefilled and decoded on 3 threads. A race fails the run.
TSAN := -fsanitize=thread -fno-omit-frame-pointer
test-tsan: export TSAN_OPTIONS = halt_on_error=1 exitcode=66
test-tsan:
	$(MAKE) BUILD=build/tsan OPT="-O1 $(TSAN)" LDFLAGS="$(TSAN)" test build/tsan/synth_model
	build/tsan/synth_model stories15M build/tsan/stories15M.bin
	for mode in qrazor w8a16 fp32 sdr-p; do \
	  build/tsan/run build/tsan/stories15M.bin -z tests/data/tokenizer.bin -q $$mode -j 3 -n 12 \
	    -i "Once upon a time there was" >/dev/null || exit 1; done

accuracy: all
	docs/accuracy.sh

docs: all
	docs/how_it_works.sh

# The generated pages are deterministic: made again, they must equal the committed ones
# (all but their "Generated by ... at commit" line). CI runs check-docs; check-accuracy
# evaluates every mode on the whole text and takes minutes.
check-docs: all
	docs/how_it_works.sh --check

check-accuracy: all
	docs/accuracy.sh --check

# The tokenizer's Unicode classes are generated from Debian's unicode-data (UnicodeData.txt,
# PropList.txt): made again, they must equal the committed file.
UCD ?= /usr/share/unicode
check-unicode:
	@[ -f $(UCD)/UnicodeData.txt ] || { $(call apt_install,unicode-data); }
	python3 tokenizer/unicode_tables.py $(UCD) | cmp - tokenizer/unicode_tables.c
	@echo "tokenizer/unicode_tables.c is what $(UCD) says"

# Benchmarks never run as tests: they measure, they do not check.
bench: all $(BUILD)/synth_model
	docs/bench.sh

clean:
	rm -rf build run
