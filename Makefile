# SPDX-License-Identifier: MIT
# fil-profile build. `make`, `make check`, `make install PREFIX=...`, `make bench`, `make demo`.
#
# PYTHONS are the interpreters the Python extension is built for, one
# extension per CPython version (`make PYTHONS="/usr/bin/python3
# ~/.pyenv/versions/3.12.1/bin/python3"`); the first is the launcher's
# default, which the FIL_PYTHON environment variable overrides at run time.
# `make check` also builds for, and tests against, every other CPython 3.9+
# found in CHECK_PYTHONS (by default: pyenv's), skipping, with a line, those
# that are absent.

PYTHON ?= /usr/bin/python3
PYTHONS ?= $(PYTHON)
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null)
CHECK_PYTHONS ?= $(PYTHONS) $(foreach v,3.9 3.10 3.11 3.12 3.13,$(firstword $(wildcard $(PYENV_ROOT)/versions/$(v).*/bin/python3) $(PYENV_ROOT)/versions/$(v)/bin/python3))
# The interpreter that runs pytest and the helper scripts (needs pytest).
TEST_PYTHON ?= /usr/bin/python3
# `make bench` also runs the pure-Python rows on this interpreter, if present
# (the default's rows are for 3.11: the call-stack design differs on 3.12+).
BENCH_PYTHON2 ?= $(firstword $(wildcard $(PYENV_ROOT)/versions/3.12.*/bin/python3))
BENCH_ROWS2 ?= pure_python,records,rows,calls,many_peaks
PREFIX ?= /usr/local
# `make install` makes the filprofiler package (python3 -m filprofiler, the
# Jupyter magic) importable by each interpreter of PYTHONS with a
# fil-profile.pth naming $(PREFIX)/lib/fil-profile/python, in that
# interpreter's own site-packages (sysconfig's purelib, under DESTDIR:
# /usr/local/lib/python3.11/dist-packages for Debian's python3, a pyenv
# version's or a venv's own). INSTALL_PTH=0 leaves them out.
INSTALL_PTH ?= 1
OPT ?= -O2
CC ?= gcc
# DEBUG=1 builds into build-debug/ with FIL_ASSERT checks compiled in.
B := $(if $(filter 1,$(DEBUG)),build-debug,build)

# One word per interpreter: python|include|ext-suffix|X.Y (scripts/python-info).
PY_INFO := $(shell scripts/python-info $(PYTHONS))
CHECK_PY_INFO := $(shell scripts/python-info $(CHECK_PYTHONS) 2>/dev/null)
py_field = $(word $(2),$(subst |, ,$(1)))
DEFAULT_PYTHON := $(call py_field,$(firstword $(PY_INFO)),1)

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
pyext_of = $(PKGDIR)/_native$(call py_field,$(1),3)
PYEXTS := $(foreach i,$(PY_INFO),$(call pyext_of,$(i)))
CHECK_PYEXTS := $(foreach i,$(CHECK_PY_INFO),$(call pyext_of,$(i)))
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
all: $(PRELOAD) $(PYEXTS) $(LAUNCHER) $(PY_OUT)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS_REL) -c $< -o $@

$(B)/san/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC-SAN  $<"
	$(Q)$(CC) $(CFLAGS_SAN) -c $< -o $@

# The extension, once per interpreter: objects in build/py<ext-suffix>/.
define PYEXT_RULES
$(B)/py$(call py_field,$(1),3)/%.o: src/python/%.c
	@mkdir -p $$(dir $$@)
	@echo "  CC-PY   $$< ($(call py_field,$(1),4))"
	$(Q)$(CC) $(CFLAGS_REL) -I$(call py_field,$(1),2) -c $$< -o $$@

$(call pyext_of,$(1)): $(patsubst src/python/%.c,$(B)/py$(call py_field,$(1),3)/%.o,$(PYEXT_SRC))
	@mkdir -p $$(dir $$@)
	@echo "  LD      $$@"
	$(Q)$(CC) -shared -o $$@ $$^ -ldl
endef
$(foreach i,$(sort $(PY_INFO) $(CHECK_PY_INFO)),$(eval $(call PYEXT_RULES,$(i))))

$(B)/obj/src/cli/%.o: src/cli/%.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS_REL) -DFIL_DEFAULT_PYTHON='"$(DEFAULT_PYTHON)"' -c $< -o $@

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

e2e: all $(CHECK_PYEXTS)
	$(Q)FIL_PROFILE=$(abspath $(LAUNCHER)) TEST_PYTHON=$(TEST_PYTHON) \
	  scripts/run-e2e $(CHECK_PYTHONS)

# The same suites once more on the DEBUG=1 build (build-debug/), where every
# FIL_ASSERT of the accounting, one-dump, descriptor and signal invariants
# is live: all of tests/e2e and tests/oom, with the default interpreter.
e2e-debug:
	$(Q)$(MAKE) --no-print-directory DEBUG=1 all
	$(Q)FIL_PROFILE=$(abspath build-debug/bin/fil-profile) TEST_PYTHON=$(TEST_PYTHON) \
	  scripts/run-e2e $(DEFAULT_PYTHON)

check: all unit lint-signal-safety e2e e2e-debug

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/fil-profile/python/filprofiler \
	  $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(LAUNCHER) $(DESTDIR)$(PREFIX)/bin/fil-profile
	install -m 755 $(PRELOAD) $(DESTDIR)$(PREFIX)/lib/fil-profile/
	install -m 644 $(PY_OUT) $(PYEXTS) $(DESTDIR)$(PREFIX)/lib/fil-profile/python/filprofiler/
	install -m 644 man/fil-profile.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	$(Q)if [ "$(INSTALL_PTH)" = 1 ]; then for py in $(PYTHONS); do \
	  site=$$($$py -c 'import sysconfig; print(sysconfig.get_path("purelib"))') || \
	    { echo "install: $$py cannot be run: no fil-profile.pth for it" >&2; continue; }; \
	  install -d "$(DESTDIR)$$site" && \
	  echo "$(abspath $(PREFIX))/lib/fil-profile/python" > "$(DESTDIR)$$site/fil-profile.pth" && \
	  echo "  PTH     $(DESTDIR)$$site/fil-profile.pth" || exit 1; \
	done; fi

bench: all $(CHECK_PYEXTS)
	$(Q)FIL_PROFILE=$(abspath $(LAUNCHER)) FIL_PYTHON=$(DEFAULT_PYTHON) $(TEST_PYTHON) scripts/bench.py
	$(Q)if [ -n "$(BENCH_PYTHON2)" ]; then \
	  FIL_PROFILE=$(abspath $(LAUNCHER)) FIL_PYTHON=$(BENCH_PYTHON2) $(TEST_PYTHON) scripts/bench.py \
	    --only $(BENCH_ROWS2); \
	else echo "bench: no CPython 3.12 under $(PYENV_ROOT)/versions: its rows are skipped"; fi

demo: all
	$(LAUNCHER) run --no-browser -o fil-result tests/data/demo.py

format:
	clang-format -i $(CORE_SRC) $(INTERPOSE_SRC) $(CLI_SRC) $(PYEXT_SRC) $(UNIT_SRC) include/fil/*.h

clean:
	rm -rf build build-debug

-include $(shell find $(B) -name '*.d' 2>/dev/null)
