# pg_cdp: `make demo` and `make test` set everything up from nothing (see README.md).
# The extension itself builds the PGXS way: make && sudo make install.

PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config

ifeq ($(wildcard $(PG_CONFIG)),)
# A fresh machine: install the Debian packages first, then run the target for real.
.DEFAULT_GOAL := all
all install test demo bench installcheck unit:
	./scripts/install-deps.sh
	$(MAKE) $@
else

EXTENSION = cdp
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" cdp.control)
MODULE_big = cdp
OBJS = $(patsubst %.cpp,%.o,$(sort $(wildcard src/core/*.cpp src/pg/*.cpp src/sqlapi/*.cpp)))
DATA = $(sort $(wildcard sql/cdp--*.sql))
# -MMD: every object also records the headers it includes, so a changed header rebuilds its users.
PG_CPPFLAGS = -I$(CURDIR)/include -MMD -MP
PG_CXXFLAGS = -std=c++17 -pthread -Wno-register -fno-omit-frame-pointer
SHLIB_LINK = -lstdc++ -lre2 -lyaml-cpp -pthread
# No LLVM bitcode: JIT-inlining of C++ functions gains nothing here, and it would need clang.
override with_llvm = no
EXTRA_CLEAN = build $(OBJS:.o=.d) results regression.diffs regression.out output_iso

# `make installcheck` (as a database superuser, against a running server) runs the same suites
# as `make test` does on its temporary instances.
REGRESS = $(shell sed -n 's/^test: //p' test/schedule)
REGRESS_OPTS = --inputdir=test
ISOLATION = $(shell sed -n 's/^test: //p' test/isolation_schedule)
ISOLATION_OPTS = --inputdir=test

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The install script of the current version is assembled from extension/, one file per concept.
# Released versions' scripts in sql/ are frozen; later changes go into upgrade scripts.
sql/cdp--$(EXTVERSION).sql: $(sort $(wildcard extension/*.sql)) cdp.control
	@{ printf '%s\n' '-- pg_cdp $(EXTVERSION) install script, assembled from extension/*.sql by make; do not edit.'; \
	   printf '%s\n' '\echo Use "CREATE EXTENSION cdp" to load this file. \quit'; \
	   for f in $(sort $(wildcard extension/*.sql)); do printf '\n-- from %s\n' "$$f"; cat "$$f"; done; } > $@

all: sql/cdp--$(EXTVERSION).sql
-include $(OBJS:.o=.d)

.PHONY: test demo bench unit deps
deps:
	./scripts/install-deps.sh

unit: deps
	./scripts/unit.sh

test: deps
	./scripts/test.sh

demo: deps
	./scripts/demo.sh

bench: deps
	./bench/run

endif
