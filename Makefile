# skywire-c: one Makefile for the common library, every daemon, tool and test.
#
# Layout it relies on (so adding a file needs no edit here):
#   common/*.c               -> build/libswcommon.a
#   <service>/main.c         -> build/bin/<service>, linked with <service>/*.c
#   skywire-svc/*.c          -> build/bin/skywire-svc, linked with every service
#   tests/common/test_*.c    -> build/tests/common/test_*   (cmocka)
#   tests/<service>/test_*.c -> build/tests/<service>/test_* (linked with that service)
#
# make SAN=1 builds into build/san with ASan+UBSan.

VERSION   := 0.1.0
PREFIX    ?= /usr/local
SAN       ?= 0
PKGS      := libevent libcjson hiredis libsodium
TEST_PKGS := cmocka

# clang and gcc builds never share objects: clang's go to build/clang, build/san-clang.
CCSUFFIX  := $(if $(findstring clang,$(notdir $(CC))),-clang,)
ifeq ($(SAN),1)
BUILD     := build/san$(CCSUFFIX)
SANFLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT       ?= -O1
else
BUILD     := build$(if $(CCSUFFIX),/clang,)
SANFLAGS  :=
OPT       ?= -O2
endif

WARN := -Wall -Wextra -Wpedantic -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wpointer-arith -Wsign-compare
CFLAGS  ?= $(OPT) -g
ALL_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(WARN) $(CFLAGS) \
	$(SANFLAGS) -I. -Icommon -DSW_VERSION='"$(VERSION)"' \
	$(shell pkg-config --cflags $(PKGS))
LIBS    := $(shell pkg-config --libs $(PKGS)) -lm
LDFLAGS += $(SANFLAGS)

# Every folder with a main.c is a program; skywire-svc links all services,
# which are listed once, in skywire-svc/services.def (one SW_SERVICE(x) line each).
SERVICES := $(shell sed -n 's/^SW_SERVICE(\([a-z0-9_]*\)).*/\1/p' skywire-svc/services.def | tr _ -)
SERVICES := $(foreach s,$(SERVICES),$(if $(wildcard $(s)/main.c),$(s)))
TOOLS    := $(filter-out $(SERVICES) skywire-svc visor tests bench e2e compose, \
	$(patsubst %/main.c,%,$(wildcard */main.c)))

COMMON_SRC := $(wildcard common/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/obj/%.o)
LIBCOMMON  := $(BUILD)/libswcommon.a

svc_src = $(filter-out $(1)/main.c,$(wildcard $(1)/*.c))
svc_obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(call svc_src,$(1)))
ALL_SVC_OBJ := $(foreach s,$(SERVICES),$(call svc_obj,$(s)))

BINS := $(addprefix $(BUILD)/bin/,$(SERVICES) $(TOOLS) skywire-svc)

TEST_SRC := $(wildcard tests/*/test_*.c)
TEST_BIN := $(patsubst %.c,$(BUILD)/%,$(TEST_SRC))
PY_TESTS := $(wildcard tests/*/test_*.py)
TEST_HELPER_SRC := $(wildcard tests/lib/*.c)
TEST_HELPER_OBJ := $(TEST_HELPER_SRC:%.c=$(BUILD)/obj/%.o)

# Objects made on the way to a test binary are kept, not rebuilt every run.
.SECONDARY:

.PHONY: all deps test check run clean install format lint bench \
	e2e-run e2e-test e2e-stop e2e-logs unit fuzz fuzz-bins reliability

all: $(BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(LIBCOMMON): $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

define svc_rules
$(BUILD)/bin/$(1): $(BUILD)/obj/$(1)/main.o $(call svc_obj,$(1)) $(LIBCOMMON)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LIBS)
endef
$(foreach s,$(SERVICES) $(TOOLS),$(eval $(call svc_rules,$(s))))

SVC_SRC := $(wildcard skywire-svc/*.c)
$(BUILD)/bin/skywire-svc: $(SVC_SRC:%.c=$(BUILD)/obj/%.o) $(ALL_SVC_OBJ) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# A test in tests/<dir>/ links the objects of the service <dir> (if any).
$(BUILD)/tests/%: tests/%.c $(TEST_HELPER_OBJ) $(ALL_SVC_OBJ) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(shell pkg-config --cflags $(TEST_PKGS)) -o $@ $< \
		$(TEST_HELPER_OBJ) $(call svc_obj,$(patsubst %/,%,$(dir $*))) $(LIBCOMMON) \
		$(LDFLAGS) $(LIBS) $(shell pkg-config --libs $(TEST_PKGS))

# Unit and integration tests; each binary is self-contained (starts what it needs).
unit: $(BINS) $(TEST_BIN)
	@mkdir -p $(BUILD)/tests
	@SW_BUILD=$(BUILD) SW_TMP=$(BUILD)/tests SW_TALLY=$(SW_TALLY) sh tests/run.sh $(TEST_BIN) $(PY_TESTS)

test: unit

# deps: install the Debian packages the build and the tests need, only if missing.
deps:
	@sh .ci/deps.sh

# The e2e scenarios run against the one-process deployment on the embedded
# store, then on redis with every service in its own process.
# The closing line totals every test run by it.
check: deps
	@mkdir -p $(BUILD)
	@rm -f $(BUILD)/check.tally
	$(MAKE) all
	$(MAKE) test SW_TALLY=$(CURDIR)/$(BUILD)/check.tally
	$(MAKE) fuzz FUZZ_S=$(FUZZ_CHECK_S) SW_TALLY=$(CURDIR)/$(BUILD)/check.tally
	$(MAKE) e2e-run
	$(MAKE) e2e-test SW_TALLY=$(CURDIR)/$(BUILD)/check.tally || { $(MAKE) e2e-stop; exit 1; }
	$(MAKE) e2e-stop
	$(MAKE) e2e-run E2E_MODE=split E2E_CONFIG=compose/deployment-redis.json
	$(MAKE) e2e-test E2E_CONFIG=compose/deployment-redis.json \
		SW_TALLY=$(CURDIR)/$(BUILD)/check.tally || { $(MAKE) e2e-stop; exit 1; }
	$(MAKE) e2e-stop
	@awk '{p += $$1; f += $$2} END {printf "check: %d passed, %d failed\n", p, f}' \
		$(BUILD)/check.tally

run: deps all
	@echo "tpviz, the network's picture: http://127.0.0.1:9096/ (docs/tpviz.md)"
	$(BUILD)/bin/skywire-svc run --config compose/deployment.json

FUZZ_CHECK_S ?= 5
E2E_DIR    ?= .e2e
E2E_CONFIG ?= compose/deployment.json
E2E_MODE   ?= one
e2e-run: all
	@SW_BUILD=$(BUILD) E2E_DIR=$(E2E_DIR) E2E_MODE=$(E2E_MODE) sh e2e/run.sh $(E2E_CONFIG)
e2e-test: all
	@SW_BUILD=$(BUILD) E2E_DIR=$(E2E_DIR) SW_TALLY=$(SW_TALLY) sh e2e/test.sh $(E2E_CONFIG)
e2e-stop:
	@E2E_DIR=$(E2E_DIR) sh e2e/stop.sh
# The compose deployment's container logs (or the host modes' log files).
e2e-logs:
	@if [ "$$(cat $(E2E_DIR)/mode 2>/dev/null)" = compose ]; then \
		E2E_DIR=$(E2E_DIR) sh e2e/compose.sh logs; else tail -n 50 $(E2E_DIR)/*.log; fi

bench: all
	@SW_BUILD=$(BUILD) sh bench/run.sh

# libFuzzer targets (clang): fuzz/fuzz_*.c, each linked with the common
# library and every service, built in build/fuzz with ASan+UBSan.  make fuzz
# runs each for FUZZ_S seconds from its seed corpus (fuzz/corpus/<target>).
FUZZ_S     ?= 60
FUZZ_SRC   := $(wildcard fuzz/fuzz_*.c)
FUZZ_BIN   := $(patsubst fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
FUZZ_FLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
$(BUILD)/fuzz/%: fuzz/%.c fuzz/fuzz.h $(ALL_SVC_OBJ) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -o $@ $< $(ALL_SVC_OBJ) $(LIBCOMMON) $(LIBS)
fuzz-bins: $(FUZZ_BIN)
fuzz:
	$(MAKE) fuzz-bins BUILD=build/fuzz CC=clang OPT=-O1 SANFLAGS='$(FUZZ_FLAGS)'
	@SW_TALLY=$(SW_TALLY) SW_RELIABILITY=$(BUILD)/reliability sh fuzz/run.sh build/fuzz/fuzz $(FUZZ_S) $(notdir $(FUZZ_BIN))

# The reliability table (docs/reliability.md), from the figures the fault
# tests last wrote (tests/fault/*.py leave them in $(BUILD)/reliability/).
reliability:
	@python3 tests/fault/table.py $(BUILD)/reliability docs/reliability.md

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

lint:
	clang-tidy $$(git ls-files 'common/*.c' '*/*.c') -- -std=c11 -I. -Icommon \
		$(shell pkg-config --cflags $(PKGS))
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance \
		-I common $$(git ls-files '*.c')

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
