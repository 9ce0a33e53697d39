# dal — build, test and demo.
#
#   make            build/dalc, the libraries and the example pass plugins
#   make test       install missing Debian packages, build, run every test
#   make test-san   the unit tests again under AddressSanitizer + UBSan
#   make demo       the most end-to-end thing dal does today
#   make deps       check (and as root install) the Debian packages dal needs
#
# Every goal but `deps` and `clean` (the default `make` too) first runs
# the packages check, then a second make that does the work: the flags
# from llvm-config and pkg-config are read only after the packages that
# provide them are installed, so the first `make` on a fresh machine works
# (tests/scripts/fresh_make.sh). DEPS is that check's command; LLVM_CONFIG
# and PKG_CONFIG name the tools.
#
# Sources are found by directory: every .c file in a folder goes into that
# folder's library; tests/test_*.c are Check programs, one binary each.

DEPS    ?= sh tools/deps.sh
NODEPS_GOALS := deps clean

# ---- first pass: packages, then the real make ----------------------------------
# DAL_DEPS_OK=1 marks the second pass; it reaches every nested $(MAKE) too.
ifeq ($(DAL_DEPS_OK),)
ifneq ($(filter-out $(NODEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
GOALS := $(or $(MAKECMDGOALS),all)
.PHONY: $(GOALS) dal-deps-then-make
$(GOALS): dal-deps-then-make ; @:
dal-deps-then-make:
	@$(DEPS)
	@$(MAKE) --no-print-directory DAL_DEPS_OK=1 $(filter-out deps,$(MAKECMDGOALS))
DAL_FIRST_PASS := 1
endif
endif

ifndef DAL_FIRST_PASS
# ---- second pass (or only `deps` / `clean`): the build itself -------------------

CC      ?= cc
LLVM_CONFIG ?= llvm-config-16
PKG_CONFIG  ?= pkg-config
SAN     ?= 0

ifeq ($(SAN),1)
  BUILD   := build-san
  SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
  OPT     := -O1 -g
else
  BUILD   := build
  SANFLAGS :=
  OPT     := -O2 -g
endif

CFLAGS  := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Werror \
           $(OPT) $(SANFLAGS) -I. -I$(BUILD)/gen -MMD -MP
LDFLAGS := $(SANFLAGS) -pthread
BLAS_CFLAGS := $(shell $(PKG_CONFIG) --cflags openblas 2>/dev/null)
BLAS_LIBS   := $(shell $(PKG_CONFIG) --libs openblas 2>/dev/null || echo -lopenblas)
CHECK_LIBS  := $(shell $(PKG_CONFIG) --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lm)
# cairo and fontconfig: their headers for the runtime's captioned PNG grids
# (and their test), their libraries for everything that links the runtime.
CAIRO_CFLAGS := $(shell $(PKG_CONFIG) --cflags cairo fontconfig)
CAIRO_LIBS   := $(shell $(PKG_CONFIG) --libs cairo fontconfig)
LDLIBS  := -lcjson -lz $(BLAS_LIBS) $(CAIRO_LIBS) -lm
# LLVM: its headers only for codegen/llvm objects, its library only for
# programs that link codegen (the runtime never sees LLVM).
LLVM_CFLAGS := $(shell $(LLVM_CONFIG) --cflags)
LLVM_LIBS   := $(shell $(LLVM_CONFIG) --ldflags) $(shell $(LLVM_CONFIG) --libs core orcjit native passes)

# ---- sources ----------------------------------------------------------------
PARTS := frontend ir ref passes codegen runtime
frontend_SRC := $(wildcard frontend/*.c) $(BUILD)/gen/parser.c $(BUILD)/gen/lexer.c
ir_SRC       := $(wildcard ir/*.c)
ref_SRC      := $(wildcard ir/ref/*.c)
passes_SRC   := $(wildcard passes/*.c)
codegen_SRC  := $(wildcard codegen/*.c codegen/*/*.c)
runtime_SRC  := $(wildcard runtime/*/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(patsubst $(BUILD)/%,%,$(1)))
$(foreach p,$(PARTS),$(eval $(p)_OBJ := $(call obj,$($(p)_SRC))))

# Link order: a library comes before the ones it uses.
LIB_ORDER := frontend codegen passes ref ir runtime
lib = $(BUILD)/lib$(1).a
ALL_LIBS := $(foreach p,$(LIB_ORDER),$(call lib,$(p)))

TESTS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/test_*.c))
EXAMPLE_PLUGINS := $(patsubst examples/passes/%.c,$(BUILD)/examples/passes/%.so,$(wildcard examples/passes/*.c))
# Each test links only the libraries it needs, so one folder's work in
# progress never blocks another folder's tests. Default: everything.
LIBS_test_runtime  := runtime
LIBS_test_ir       := ir
LIBS_test_shape    := ir
LIBS_test_ref      := ref ir runtime
LIBS_test_passes   := passes ir
LIBS_test_train    := passes ref ir runtime
LIBS_test_data     := runtime
LIBS_test_tokens   := runtime
LIBS_test_bpe      := runtime
LIBS_test_sample   := runtime
LIBS_test_autodiff := passes ref ir runtime
LIBS_test_optimizer := passes ref ir runtime
LIBS_test_simplify := passes ref ir runtime
LIBS_test_fuse     := frontend passes ir runtime
LIBS_test_fuse_jit := frontend codegen passes ref ir runtime
LIBS_test_frontend := frontend ir
LIBS_test_jit      := frontend codegen passes ref ir runtime
LIBS_test_obj_cache := codegen
LIBS_test_op_eval  := frontend codegen passes ref ir runtime
LIBS_test_memplan  := frontend passes ir
LIBS_test_sched    := runtime
LIBS_test_numerics := runtime
LIBS_test_gemm_small := runtime
LIBS_test_attention := passes ref ir runtime
LIBS_test_bench    := runtime
LIBS_test_plan_program := runtime
LIBS_test_aot      := codegen passes ref ir runtime
LIBS_test_image_grid := runtime
LIBS_test_shapes_reader := runtime
LIBS_test_plot     := runtime
LIBS_test_eval    := runtime
LIBS_test_fuzz_corpus := frontend ir runtime
libs_for = $(if $(LIBS_$(1)),$(foreach p,$(LIB_ORDER),$(if $(filter $(p),$(LIBS_$(1))),$(call lib,$(p)))),$(ALL_LIBS))

# ---- rules --------------------------------------------------------------------
.PHONY: all deps test test-san unit demo bench clean
all: $(BUILD)/dalc $(EXAMPLE_PLUGINS)

# -rdynamic: a pass plugin (dalc --plugin=FILE.so) calls dalc's own ir_* and
# pass_* functions, so dalc exports its symbols.
$(BUILD)/dalc: $(call obj,$(wildcard tools/*.c)) $(ALL_LIBS)
	$(CC) $(LDFLAGS) -rdynamic -o $@ $^ $(LDLIBS)

# Example pass plugins: examples/passes/NAME.c -> BUILD/examples/passes/NAME.so
# (docs/writing-a-pass.md). Their undefined ir_* / pass_* symbols resolve
# against the dalc that loads them.
$(BUILD)/examples/passes/%.so: examples/passes/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fPIC -shared -o $@ $< $(SANFLAGS)

$(foreach p,$(PARTS),$(eval $(call lib,$(p)): $($(p)_OBJ) ; @mkdir -p $$(@D); rm -f $$@; ar rcs $$@ $$^))

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(BLAS_CFLAGS) -c $< -o $@
$(BUILD)/obj/codegen/llvm/%.o: CFLAGS += $(LLVM_CFLAGS)
$(BUILD)/obj/runtime/draw/%.o: CFLAGS += $(CAIRO_CFLAGS)
# the attention kernels' vector code wants fused multiply-adds (ISO C mode contracts none)
$(BUILD)/obj/runtime/sched/attention.o: CFLAGS += -ffp-contract=fast
$(BUILD)/tests/test_image_grid: private CFLAGS += $(CAIRO_CFLAGS)
$(BUILD)/dalc: LDLIBS += $(LLVM_LIBS)

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Ifrontend -c $< -o $@

# flex and bison: both generators run before either output is compiled.
$(BUILD)/gen/parser.c $(BUILD)/gen/parser.h: frontend/parser.y
	@mkdir -p $(@D)
	bison -Wall -d -o $(BUILD)/gen/parser.c $<
$(BUILD)/gen/lexer.c $(BUILD)/gen/lexer.h: frontend/lexer.l $(BUILD)/gen/parser.h
	@mkdir -p $(@D)
	flex -o $(BUILD)/gen/lexer.c --header-file=$(BUILD)/gen/lexer.h $<
$(BUILD)/obj/gen/parser.o: $(BUILD)/gen/lexer.h
$(BUILD)/obj/gen/lexer.o: $(BUILD)/gen/parser.h
$(frontend_OBJ): | $(BUILD)/gen/parser.h $(BUILD)/gen/lexer.h

TEST_NAMES := $(patsubst tests/%.c,%,$(wildcard tests/test_*.c))
# Helpers shared by the tests (tests/*.c that are not test_*.c) in one
# archive, so each test pulls in only the helpers it calls.
TEST_HELPERS := $(BUILD)/tests/libhelpers.a
$(TEST_HELPERS): $(call obj,$(filter-out tests/test_%.c,$(wildcard tests/*.c)))
	@mkdir -p $(@D); rm -f $@; ar rcs $@ $^
define test_rule
$(BUILD)/tests/$(1): tests/$(1).c $(TEST_HELPERS) $(call libs_for,$(1))
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS) -o $$@ $$< $(TEST_HELPERS) $(call libs_for,$(1)) $$(LDFLAGS) $$(CHECK_LIBS) $$(LDLIBS)
endef
$(foreach t,$(TEST_NAMES),$(eval $(call test_rule,$(t))))
# tests that link codegen (or every library) may pull in the LLVM backend
$(foreach t,$(TEST_NAMES),$(if $(or $(filter codegen,$(LIBS_$(t))),$(if $(LIBS_$(t)),,all)),\
  $(eval $(BUILD)/tests/$(t): LDLIBS += $(LLVM_LIBS))))

deps:
	@$(DEPS)

# The README's test command: packages (first pass), build, every test.
test:
	@$(MAKE) --no-print-directory unit
	@sh tests/run.sh $(BUILD)

unit: all $(TESTS)

# Unit tests and the command-line script (every bad-input class through
# dalc) under AddressSanitizer + UBSan: a leak or UB fails the run.
test-san:
	@$(MAKE) --no-print-directory SAN=1 unit
	@sh tests/run.sh build-san --san

demo: all
	@sh tools/demo.sh $(BUILD)

# dal against PyTorch on the bench configurations in interleaved rounds, the
# dVAE paper forward, compile times, the roof (OpenBLAS sgemm, FMA peak) and
# issue 11's target table (bench/run.sh; BENCH_ARGS=--quick for a smoke run,
# BENCH_ARGS='--quick --config tiny' for a minute's; DAL_BENCH_ROUNDS=N).
bench:
	@MAKE="$(MAKE)" sh bench/run.sh $(BENCH_ARGS)

$(BUILD)/bench/sgemm: bench/sgemm.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(BLAS_CFLAGS) -o $@ $< $(LDFLAGS) $(LDLIBS)

$(BUILD)/bench/fma_peak: bench/fma_peak.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS)

# ---- fuzzing (AFL++): tests/fuzz/ -------------------------------------------
# `make fuzz-build`: one AFL++ persistent-mode program per parser,
# build-fuzz/fuzz/fuzz_NAME (tests/fuzz/fuzz_NAME.c + afl_main.c), the
# frontend and runtime instrumented by afl-clang-fast (installed by
# tests/fuzz/deps.sh when missing). `make fuzz SECONDS=N`: N seconds per
# target, one target after another, then a summary (tests/fuzz/run.sh;
# FUZZ_TARGETS="npy bpe" for some of them; FUZZ_EXECS=N to stop each after
# about N executions).
FUZZ_TARGETS ?= dal safetensors npy bpe folder fashion model
FUZZ_CC ?= afl-clang-fast
SECONDS ?= 60
FUZZ_LIBS := $(foreach p,frontend ir runtime,$(call lib,$(p)))
FUZZ_COMMON := $(call obj,tests/fuzz/fuzz_util.c tests/fuzz/fuzz_data.c)
# afl-clang-fast instruments the parsers' folders and links; the rest
# (kernels with GCC-only vector builtins) is compiled by $(CC) as usual.
FUZZ_INSTRUMENTED := frontend ir gen runtime/core runtime/io runtime/data tests/fuzz
ifneq ($(filter build-fuzz build-fuzz-asan,$(BUILD)),)
$(foreach d,$(FUZZ_INSTRUMENTED),$(eval $(BUILD)/obj/$(d)/%.o: private CC := $(FUZZ_CC)))
$(BUILD)/fuzz/%: private CC := $(FUZZ_CC)
# images of up to 1 megapixel, not 32: a 32-megapixel decode takes ~1 s
# instrumented, and a queue full of them ran at 200 executions/s
$(BUILD)/obj/runtime/data/data_folder.o: private CFLAGS += -DFOLDER_MAX_PIXELS='(1 << 20)'
endif
.PHONY: fuzz-build fuzz fuzz-bins
# FUZZ_ASAN=1: the same programs with AddressSanitizer, in build-fuzz-asan
# (slower; finds the out-of-bounds reads and writes that do not crash).
FUZZ_BUILD := build-fuzz$(if $(filter 1,$(FUZZ_ASAN)),-asan)
fuzz-build:
	@sh tests/fuzz/deps.sh
	@$(if $(filter 1,$(FUZZ_ASAN)),AFL_USE_ASAN=1) $(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) SAN=0 fuzz-bins
fuzz-bins: $(foreach t,$(FUZZ_TARGETS),$(BUILD)/fuzz/fuzz_$(t))
$(BUILD)/fuzz/fuzz_%: tests/fuzz/afl_main.c $(BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_COMMON) $(FUZZ_LIBS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DFUZZ_FN=fuzz_$* -o $@ $< $(filter %.o,$^) $(FUZZ_LIBS) $(LDFLAGS) $(LDLIBS)
# the replay test compiles the harnesses in (#include): rebuild it when they change
$(BUILD)/tests/test_fuzz_corpus: $(wildcard tests/fuzz/*.c tests/fuzz/*.h)
fuzz: fuzz-build
	@FUZZ_TARGETS="$(FUZZ_TARGETS)" FUZZ_EXECS="$(FUZZ_EXECS)" FUZZ_BIN=$(FUZZ_BUILD)/fuzz sh tests/fuzz/run.sh $(SECONDS)

clean:
	rm -rf build build-san build-fuzz build-fuzz-asan

-include $(shell find $(BUILD)/obj $(BUILD)/examples -name '*.d' 2>/dev/null)
endif
