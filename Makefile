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
PKGS    := libcjson libpng
CFLAGS  += -std=c11 -D_POSIX_C_SOURCE=200809L $(OPT) $(ARCH) $(WARN) -fopenmp -fPIC \
           -Iinclude -Isrc -Isrc/core $(shell pkg-config --cflags $(PKGS))
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lopenblas -lz -lm
LDFLAGS += -fopenmp $(if $(filter 1,$(SANITIZE)),-fsanitize=address$(,)undefined)
, := ,

# OpenBLAS picks its kernels at load time; an inherited OPENBLAS_CORETYPE=Haswell
# halves sgemm throughput on AVX-512 machines, so our own targets run without it.
RUN     := env -u OPENBLAS_CORETYPE

B       := build
LIB_SRC := $(wildcard src/*/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(B)/obj/%.o)
CLI_SRC := $(wildcard cli/*.c)
CLI_OBJ := $(CLI_SRC:%.c=$(B)/obj/%.o)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(B)/tests/%)
HDRS    := include/loom.h $(wildcard src/*/*.h) $(wildcard cli/*.h) $(wildcard tests/*.h)

DEB_PKGS := gcc make pkg-config libopenblas-dev libpng-dev zlib1g-dev libcjson-dev dataset-fashion-mnist

.PHONY: all deps test demo bench install clean help
all: $(B)/loom $(B)/libloom.a $(B)/libloom.so

help:
	@echo "make deps     install the Debian packages loom needs (needs root)"
	@echo "make          build build/loom, build/libloom.a, build/libloom.so"
	@echo "make test     build and run every test; ends with 'N passed, N failed'"
	@echo "make demo     deps + build + train a small Row LSTM on Fashion-MNIST, sample, report test NLL"
	@echo "make bench    loom bench in the reference configuration (and the PyTorch peer if installed)"
	@echo "make install  PREFIX=/usr/local"

deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "deps: all installed"; fi

$(B)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(B)/libloom.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/libloom.so: $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/loom: $(CLI_OBJ) $(B)/libloom.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(B)/libloom.a $(LDLIBS)

$(B)/tests/%: tests/%.c $(B)/libloom.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libloom.a $(LDLIBS)

test: $(B)/loom $(TEST_BIN)
	@$(RUN) LOOM=$(B)/loom sh tests/run.sh $(TEST_BIN)

demo: deps
	$(MAKE) $(B)/loom
	$(RUN) sh bench/demo.sh $(B)/loom

bench: $(B)/loom
	$(RUN) sh bench/bench.sh $(B)/loom

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include
	install -m 755 $(B)/loom $(DESTDIR)$(PREFIX)/bin/loom
	install -m 644 $(B)/libloom.a $(B)/libloom.so $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/loom.h $(DESTDIR)$(PREFIX)/include/loom.h

clean:
	rm -rf $(B)
