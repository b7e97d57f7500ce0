# SPDX-License-Identifier: MIT
# fil-profile build. `make`, `make check`, `make install PREFIX=...`, `make bench`, `make demo`.
#
# PYTHON is the interpreter the tool runs programs with and builds its
# extension against; it is baked into the launcher as the default and can be
# overridden at run time with the FIL_PYTHON environment variable.

PYTHON ?= /usr/bin/python3
PREFIX ?= /usr/local
OPT ?= -O2
CC ?= gcc
# DEBUG=1 builds into build-debug/ with FIL_ASSERT checks compiled in.
B := $(if $(filter 1,$(DEBUG)),build-debug,build)

PY_INCLUDE := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null)
PY_EXT := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))' 2>/dev/null)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Werror
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -g $(WARN) -Iinclude -MMD -MP -fPIC -fvisibility=hidden
ifeq ($(DEBUG),1)
BASE_CFLAGS += -DFIL_DEBUG
endif
CFLAGS_REL := $(BASE_CFLAGS) $(OPT) -fno-omit-frame-pointer
CFLAGS_SAN := $(BASE_CFLAGS) -DFIL_DEBUG -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LIBS := -lsigsegv -lunwind -ldl -lpthread

CORE_MODULES := runtime state stacks tracker limits oom report render
CORE_SRC := $(sort $(foreach m,$(CORE_MODULES),$(wildcard src/$(m)/*.c)))
INTERPOSE_SRC := $(sort $(wildcard src/interpose/*.c))
CLI_SRC := $(sort $(wildcard src/cli/*.c))
PYEXT_SRC := $(sort $(wildcard src/python/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
PY_FILES := $(sort $(wildcard python/filprofiler/*.py))

rel = $(patsubst %.c,$(B)/obj/%.o,$(1))
san = $(patsubst %.c,$(B)/san/%.o,$(1))

# Files that run in signal context (scripts/check-signal-safety) are built
# without jump tables, so every indirect jump in them is a call through a
# pointer the lint can see and insist on a justification for.
SIGSAFE_SRC := $(shell grep -l 'SIGNAL-SAFE FILE' $(CORE_SRC) $(INTERPOSE_SRC) $(CLI_SRC) 2>/dev/null)
$(call rel,$(SIGSAFE_SRC)) $(call san,$(SIGSAFE_SRC)): CFLAGS_REL += -fno-jump-tables
$(call san,$(SIGSAFE_SRC)): CFLAGS_SAN += -fno-jump-tables

LIBDIR := $(B)/lib/fil-profile
PRELOAD := $(LIBDIR)/libfilpreload.so
PKGDIR := $(LIBDIR)/python/filprofiler
PYEXT := $(PKGDIR)/_native$(PY_EXT)
LAUNCHER := $(B)/bin/fil-profile
CORE_A := $(B)/obj/libfilcore.a
CORE_SAN_A := $(B)/san/libfilcore.a
UNIT_BINS := $(patsubst tests/unit/%.c,$(B)/unit/%,$(UNIT_SRC))
PY_OUT := $(patsubst python/filprofiler/%,$(PKGDIR)/%,$(PY_FILES))

Q := @
ifeq ($(V),1)
Q :=
endif

.PHONY: all check unit e2e e2e-debug lint-signal-safety install bench demo clean format
all: $(PRELOAD) $(PYEXT) $(LAUNCHER) $(PY_OUT)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS_REL) -c $< -o $@

$(B)/san/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC-SAN  $<"
	$(Q)$(CC) $(CFLAGS_SAN) -c $< -o $@

$(B)/obj/src/python/%.o: src/python/%.c
	@mkdir -p $(dir $@)
	@echo "  CC-PY   $<"
	$(Q)$(CC) $(CFLAGS_REL) -I$(PY_INCLUDE) -c $< -o $@

$(B)/obj/src/cli/%.o: src/cli/%.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS_REL) -DFIL_DEFAULT_PYTHON='"$(PYTHON)"' -c $< -o $@

$(CORE_A): $(call rel,$(CORE_SRC))
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(CORE_SAN_A): $(call san,$(CORE_SRC))
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(PRELOAD): $(call rel,$(INTERPOSE_SRC) $(CORE_SRC))
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) -shared -Wl,-z,defs -Wl,-z,now -o $@ $^ $(LIBS)

$(PYEXT): $(call rel,$(PYEXT_SRC))
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) -shared -o $@ $^

$(LAUNCHER): $(call rel,$(CLI_SRC)) $(CORE_A)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) -o $@ $^ $(LIBS) -lm

$(PKGDIR)/%.py: python/filprofiler/%.py
	@mkdir -p $(dir $@)
	$(Q)cp $< $@

$(B)/unit/%: tests/unit/%.c $(CORE_SAN_A)
	@mkdir -p $(dir $@)
	@echo "  CC-SAN  $<"
	$(Q)$(CC) $(CFLAGS_SAN) -Itests/unit -o $@ $< $(CORE_SAN_A) $(LIBS) -lm

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "  UNIT    $$t"; \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  FIL_TEST_DATA=tests/data $$t; done

lint-signal-safety: all
	$(Q)scripts/check-signal-safety --self-test
	$(Q)scripts/check-signal-safety $(B)/obj

e2e: all
	$(Q)FIL_PROFILE=$(abspath $(LAUNCHER)) FIL_PYTHON=$(PYTHON) \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests/e2e tests/oom

# The same suites once more on the DEBUG=1 build (build-debug/), where every
# FIL_ASSERT of the accounting, one-dump, descriptor and signal invariants
# is live: all of tests/e2e and tests/oom (about as long as the release pass).
e2e-debug:
	$(Q)$(MAKE) --no-print-directory DEBUG=1 all
	$(Q)FIL_PROFILE=$(abspath build-debug/bin/fil-profile) FIL_PYTHON=$(PYTHON) \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests/e2e tests/oom

check: all unit lint-signal-safety e2e e2e-debug

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/fil-profile/python/filprofiler \
	  $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(LAUNCHER) $(DESTDIR)$(PREFIX)/bin/fil-profile
	install -m 755 $(PRELOAD) $(DESTDIR)$(PREFIX)/lib/fil-profile/
	install -m 644 $(PY_OUT) $(PYEXT) $(DESTDIR)$(PREFIX)/lib/fil-profile/python/filprofiler/
	install -m 644 man/fil-profile.1 $(DESTDIR)$(PREFIX)/share/man/man1/

bench: all
	$(Q)FIL_PROFILE=$(abspath $(LAUNCHER)) FIL_PYTHON=$(PYTHON) $(PYTHON) scripts/bench.py

demo: all
	$(LAUNCHER) run --no-browser -o fil-result tests/data/demo.py

format:
	clang-format -i $(CORE_SRC) $(INTERPOSE_SRC) $(CLI_SRC) $(PYEXT_SRC) $(UNIT_SRC) include/fil/*.h

clean:
	rm -rf build build-debug

-include $(shell find $(B) -name '*.d' 2>/dev/null)
