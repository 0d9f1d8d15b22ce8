# loom — build, test, demo, bench.  `make help` lists the targets.

CC      ?= cc
PREFIX  ?= /usr/local
ARCH    ?= -march=native
OPT     ?= -O3
WARN    := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes
ifeq ($(WERROR),1)
WARN    += -Werror
endif
ifeq ($(SANITIZE),1)
OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
endif
# gcc keeps a loop scalar when a select on a float compare could trap (the clamps
# of loom_expf, src/core/fastmath.h): without this every gate loop ran one lane at
# a time. Values are unchanged (no reassociation, no contraction under -std=c11).
CFLAGS  += -fno-trapping-math
PKGS    := libcjson libpng pixman-1
CFLAGS  += -std=c11 -D_POSIX_C_SOURCE=200809L $(OPT) $(ARCH) $(WARN) -fopenmp -fPIC \
           -Iinclude -Isrc -Isrc/core $(shell pkg-config --cflags $(PKGS))
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lopenblas -lz -lm
# giflib (GIF writer, src/io/gif.c) ships no .pc file
LDLIBS  += -lgif
# libjpeg-turbo (JPEG grids and JPEG folders, src/io/jpeg.c): no .pc file either
LDLIBS  += -ljpeg
# oneDNN (libdnnl-dev, in DEB_PKGS): built in when its header is present (DNNL=0 leaves
# it out). Sources test LOOM_HAVE_DNNL.
DNNL    ?= $(if $(wildcard /usr/include/oneapi/dnnl/dnnl.h),1,0)
ifeq ($(DNNL),1)
CFLAGS  += -DLOOM_HAVE_DNNL
LDLIBS  += -ldnnl
endif
# OpenMPI (openmpi-bin, libopenmpi-dev, in DEB_PKGS): built in when mpicc is present
# (MPI=0 leaves it out): `mpirun -np R loom train` trains data parallel
# (docs/distributed.md). Only the CLI's cli/mpi.c includes mpi.h and only loom links
# libmpi; the library knows no MPI (src/core/comm.h).
MPI     ?= $(if $(shell command -v mpicc 2>/dev/null),1,0)
ifeq ($(MPI),1)
CFLAGS  += -DLOOM_HAVE_MPI
MPI_INC := $(addprefix -isystem ,$(shell mpicc -showme:incdirs))
MPI_LIB := $(shell mpicc -showme:link)
endif
LDFLAGS += -fopenmp $(if $(filter 1,$(SANITIZE)),-fsanitize=address$(,)undefined)
, := ,

# OpenBLAS picks its kernels at load time; an inherited OPENBLAS_CORETYPE=Haswell
# halves sgemm throughput on AVX-512 machines, so our own targets run without it.
RUN     := env -u OPENBLAS_CORETYPE

# A sanitizer build lives in its own directory, so its objects never mix with normal ones.
B       := $(if $(filter 1,$(SANITIZE)),build-san,build)
LIB_SRC := $(wildcard src/*/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(B)/obj/%.o)
CLI_SRC := $(filter-out $(if $(filter 1,$(MPI)),,cli/mpi.c),$(wildcard cli/*.c))
CLI_OBJ := $(CLI_SRC:%.c=$(B)/obj/%.o)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(B)/tests/%)
HDRS    := include/loom.h $(wildcard include/loom/*.h) $(wildcard src/*/*.h) $(wildcard cli/*.h) $(wildcard tests/*.h)

# Fuzz harnesses (tests/fuzz/, docs/robustness.md). `make test` replays their committed
# corpora through the same LLVMFuzzerTestOneInput compiled with $(CC) and a small driver;
# `make fuzz` builds them with clang + libFuzzer and fuzzes each for FUZZ_SECONDS.
FUZZ_NAMES := idx png safetensors args
FUZZ_SUPPORT := tests/fuzz/driver.c tests/fuzz/fuzz_util.c tests/fuzz/fuzz.h
FUZZ_REPLAY := $(FUZZ_NAMES:%=$(B)/tests/fuzz_%)
TEST_BIN += $(FUZZ_REPLAY)

DEB_PKGS := gcc make pkg-config libopenblas-dev libpng-dev zlib1g-dev libcjson-dev dataset-fashion-mnist
DEB_PKGS += libgif-dev libdnnl-dev libjpeg62-turbo-dev libpixman-1-dev
DEB_PKGS += openmpi-bin libopenmpi-dev

# `make colour-data`: 32x32 RGB patches of the photographs in mate-backgrounds (docs/data.md),
# written once to $(COLOUR_DIR); the Debian interpreter, which is the one python3-pil serves.
COLOUR_DEB_PKGS := mate-backgrounds python3-pil
COLOUR_SRC := /usr/share/backgrounds/mate/nature
COLOUR_DIR ?= data/colour32
DEB_PYTHON := /usr/bin/python3

.PHONY: all deps test demo bench install clean help fuzz fuzz-deps fuzz-build colour-data report-deps
all: $(B)/loom $(B)/libloom.a $(B)/libloom.so

help:
	@echo "make deps     install the Debian packages loom needs (needs root)"
	@echo "make          build build/loom, build/libloom.a, build/libloom.so"
	@echo "make test     build and run every test; ends with 'N passed, N failed'"
	@echo "make demo     deps + build + train a small Row LSTM on Fashion-MNIST, sample, report test NLL"
	@echo "make bench    loom bench in the reference configuration (and the PyTorch peer if installed)"
	@echo "make install  PREFIX=/usr/local (DESTDIR too): loom, headers, libloom.a, libloom.so.X.Y.Z, loom.pc"
	@echo "make test SANITIZE=1   the whole suite under ASan + UBSan (objects in build-san/)"
	@echo "make fuzz FUZZ_SECONDS=N   fuzz each parser N seconds with libFuzzer (installs clang-14)"
	@echo "make report-deps  Debian's chromium, for the browser test of loom report"
	@echo "make colour-data   32x32 RGB PNG folder (train/, test/) in $(COLOUR_DIR) from mate-backgrounds"

deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "deps: all installed"; fi

# Debian's Chromium, for tests/cli/report.sh (loom report in a headless browser); .ci/run
# calls it, and the test runs it when chromium is absent.
REPORT_DEB_PKGS := chromium

report-deps:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(REPORT_DEB_PKGS)"

colour-data:
	@if [ -d $(COLOUR_DIR)/train ] && [ -d $(COLOUR_DIR)/test ]; then \
	  echo "colour-data: $(COLOUR_DIR) exists (remove it to rebuild)"; \
	else \
	  $(MAKE) --no-print-directory deps DEB_PKGS="$(COLOUR_DEB_PKGS)" && \
	  mkdir -p $(dir $(COLOUR_DIR)) && $(DEB_PYTHON) tools/colour32.py $(COLOUR_SRC) $(COLOUR_DIR); \
	fi

$(B)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(B)/libloom.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# The shared library: libloom.so -> libloom.so.MAJOR (the SONAME) -> libloom.so.X.Y.Z,
# the version read from include/loom/version.h (its one source of truth).
VERSION := $(shell sed -n 's/^\#define LOOM_VERSION "\(.*\)"/\1/p' include/loom/version.h)
SOMAJOR := $(firstword $(subst ., ,$(VERSION)))
SONAME  := libloom.so.$(SOMAJOR)

$(B)/libloom.so.$(VERSION): $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -Wl,-soname,$(SONAME) -o $@ $^ $(LDLIBS)

$(B)/libloom.so: $(B)/libloom.so.$(VERSION)
	ln -sf libloom.so.$(VERSION) $(B)/$(SONAME)
	ln -sf $(SONAME) $@

$(B)/obj/cli/mpi.o: CFLAGS += $(MPI_INC)

$(B)/loom: $(CLI_OBJ) $(B)/libloom.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(B)/libloom.a $(LDLIBS) $(MPI_LIB)

$(B)/tests/%: tests/%.c $(B)/libloom.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libloom.a $(LDLIBS)

$(B)/tests/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_SUPPORT) $(B)/obj/cli/args.o $(B)/libloom.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Icli -Itests/fuzz -DFUZZ_NAME='"$*"' $(LDFLAGS) -o $@ $< tests/fuzz/driver.c \
	    tests/fuzz/fuzz_util.c $(B)/obj/cli/args.o $(B)/libloom.a $(LDLIBS)

# Fault-injection hooks (LOOM_FAULT_*, docs/robustness.md) exist only in the test build
# $(B)/test/loom, which tests/cli/faults.sh runs for them: the files that have a hook are
# compiled again with -DLOOM_TEST_HOOKS; $(B)/loom and the libraries never read them.
HOOK_SRC := $(shell grep -l LOOM_TEST_HOOKS $(LIB_SRC) $(CLI_SRC))
HOOK_OBJ := $(HOOK_SRC:%.c=$(B)/test/obj/%.o)

$(B)/test/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DLOOM_TEST_HOOKS -c $< -o $@

$(B)/test/loom: $(filter-out $(HOOK_SRC:%.c=$(B)/obj/%.o),$(CLI_OBJ) $(LIB_OBJ)) $(HOOK_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(MPI_LIB)

test: $(B)/loom $(B)/test/loom $(TEST_BIN) test-prefix
	@$(RUN) LOOM=$(B)/loom LOOM_PREFIX=$(CURDIR)/$(B)/prefix $(EXAMPLE_ENV) sh tests/run.sh $(TEST_BIN)

demo: deps
	$(MAKE) $(B)/loom
	$(RUN) sh bench/demo.sh $(B)/loom

bench: $(B)/loom
	$(RUN) sh bench/bench.sh $(B)/loom

# install: the CLI, the headers, libloom.a, libloom.so.X.Y.Z with its SONAME and
# development symlinks, and loom.pc (static link flags in Libs.private and
# Requires.private: `pkg-config --static --libs loom`). PREFIX and DESTDIR as usual;
# loom.pc records PREFIX (not DESTDIR).
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
PC_LIBS_PRIVATE := -lgif -ljpeg $(if $(filter 1,$(DNNL)),-ldnnl) -lopenblas -lz -lm -fopenmp

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR)/loom
	install -m 755 $(B)/loom $(DESTDIR)$(PREFIX)/bin/loom
	install -m 644 $(B)/libloom.a $(DESTDIR)$(LIBDIR)/libloom.a
	install -m 755 $(B)/libloom.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libloom.so.$(VERSION)
	ln -sf libloom.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libloom.so
	install -m 644 include/loom.h $(DESTDIR)$(INCDIR)/loom.h
	install -m 644 include/loom/*.h $(DESTDIR)$(INCDIR)/loom/
	install -d $(DESTDIR)$(PREFIX)/share/loom
	install -m 644 models/fmnist_renet.safetensors $(DESTDIR)$(PREFIX)/share/loom/
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(LIBDIR)' 'includedir=$(INCDIR)' '' \
	  'Name: loom' 'Description: recurrent image generators on CPUs' 'Version: $(VERSION)' \
	  'Cflags: -I$${includedir}' 'Libs: -L$${libdir} -lloom' \
	  'Libs.private: $(PC_LIBS_PRIVATE)' 'Requires.private: $(PKGS)' \
	  >$(DESTDIR)$(LIBDIR)/pkgconfig/loom.pc
	chmod 644 $(DESTDIR)$(LIBDIR)/pkgconfig/loom.pc

# make test installs into $(B)/prefix, where tests/cli/examples.sh builds examples/
# against the installed headers, libraries and loom.pc as a user would.
.PHONY: test-prefix
test-prefix: all
	rm -rf $(B)/prefix $(B)/destdir
	$(MAKE) --no-print-directory install PREFIX=$(CURDIR)/$(B)/prefix DESTDIR= >/dev/null
	$(MAKE) --no-print-directory install PREFIX=/opt/loom DESTDIR=$(CURDIR)/$(B)/destdir >/dev/null
ifeq ($(SANITIZE),1)
EXAMPLE_ENV := LOOM_EXAMPLE_CFLAGS='-fsanitize=address,undefined' LOOM_EXAMPLE_NO_STATIC=1
endif

FUZZ_CC      ?= clang-14
FUZZ_SECONDS ?= 60
FUZZ_DEB_PKGS := clang-14 libclang-rt-14-dev libomp-14-dev
FB           := build-fuzz
FUZZ_FLAGS   := -std=c11 -D_POSIX_C_SOURCE=200809L -O1 -g -fno-omit-frame-pointer $(ARCH) \
                -fsanitize=address,undefined -fno-sanitize-recover=undefined -fopenmp \
                -Iinclude -Isrc -Isrc/core -Icli -Itests/fuzz $(shell pkg-config --cflags $(PKGS))
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FB)/obj/%.o) $(FB)/obj/cli/args.o
.SECONDARY: $(FUZZ_LIB_OBJ)

fuzz-deps: deps
	@missing=""; for p in $(FUZZ_DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "fuzz-deps: all installed"; fi

$(FB)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FB)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_SUPPORT) $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< tests/fuzz/fuzz_util.c $(FUZZ_LIB_OBJ) \
	    $(LDLIBS)

fuzz-build: fuzz-deps
	$(MAKE) $(FUZZ_NAMES:%=$(FB)/fuzz_%)

# Each harness runs FUZZ_SECONDS on one core, starting from the committed seeds; new
# corpus entries go to $(FB)/corpus/NAME, crashes to $(FB)/crash/NAME/ (commit a crash
# input under tests/fuzz/regress/NAME/ once the bug is fixed). Logs: $(FB)/NAME.log.
fuzz: fuzz-build
	@status=0; for n in $(FUZZ_NAMES); do \
	  mkdir -p $(FB)/corpus/$$n $(FB)/crash/$$n; \
	  dict=""; [ -f tests/fuzz/$$n.dict ] && dict=-dict=tests/fuzz/$$n.dict; \
	  echo "fuzz_$$n: $(FUZZ_SECONDS)s"; \
	  if $(RUN) $(FB)/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -max_len=65536 \
	       -print_final_stats=1 $$dict -artifact_prefix=$(FB)/crash/$$n/ \
	       $(FB)/corpus/$$n tests/fuzz/corpus/$$n >$(FB)/$$n.log 2>&1; \
	  then grep -E '^stat::number_of_executed_units|^Done' $(FB)/$$n.log | tr '\n' ' '; echo; \
	  else echo "fuzz_$$n FOUND A CRASH: see $(FB)/$$n.log and $(FB)/crash/$$n/"; status=1; fi; \
	done; exit $$status

clean:
	rm -rf $(B) build-san $(FB)
