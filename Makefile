# PowerHive — one non-recursive Makefile for the whole tree.
#
#   make              build libhive and every daemon into bin/
#   make test         install missing packages, build, run every test
#   make test-compose the docker-compose deployment on a Docker engine
#   make SANITIZE=address,undefined test   the same under ASan/UBSan
#   make run          start the suite (simulated fleet when no subnet is set)
#   make bench        benchmarks: figures and ratios
#   make bench-fleet  the whole suite at 10,000 simulated miners, for minutes
#   make fuzz         short fuzz runs of the parsers
#   make clean

SANITIZE ?=
ifeq ($(SANITIZE),)
  VARIANT := release
  BIN     := bin
else
  VARIANT := san
  BIN     := build/san/bin
endif
BUILD := build/$(VARIANT)

CC      ?= cc
PKGS    := libcurl sqlite3 jansson
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lcurl -lsqlite3 -ljansson)
# libhive reads a plant's power meter over Modbus TCP (libhive/plant.c), and
# plantsim serves one.
MODBUS_CFLAGS := $(shell pkg-config --cflags libmodbus 2>/dev/null || echo -I/usr/include/modbus)
MODBUS_LIBS   := $(shell pkg-config --libs libmodbus 2>/dev/null || echo -lmodbus)

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wpointer-arith -Wformat=2 -Wno-format-nonliteral -Wvla
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE $(WARN) -Ilibhive/include $(PKG_CFLAGS) $(MODBUS_CFLAGS) -MMD -MP -pthread
# nng and civetweb ship no pkg-config file on Debian 12.
LDLIBS  := $(PKG_LIBS) $(MODBUS_LIBS) -lnng -lcivetweb -lmbedcrypto -lpthread -lm
ifneq ($(SANITIZE),)
  CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
  LDFLAGS += -fsanitize=$(SANITIZE)
endif

DAEMONS := apid discoverd pollerd telemetryd

LIB_SRC := $(wildcard libhive/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIBHIVE := $(BUILD)/libhive.a

# Shared test helpers (process spawning, HTTP, temp dirs).
TLIB_SRC := $(wildcard tests/lib/*.c)
TLIB_OBJ := $(TLIB_SRC:%.c=$(BUILD)/%.o)

SIM_SRC := $(wildcard tests/sim/*.c)
SIM_OBJ := $(SIM_SRC:%.c=$(BUILD)/%.o)

# plantsim: the simulated power plant.
PLANT_SRC := $(wildcard tests/plantsim/*.c)
PLANT_OBJ := $(PLANT_SRC:%.c=$(BUILD)/%.o)

UNIT_SRC := $(wildcard tests/unit/test_*.c)
E2E_SRC  := $(wildcard tests/e2e/test_*.c)
TEST_BIN := $(UNIT_SRC:tests/%.c=$(BIN)/tests/%) $(E2E_SRC:tests/%.c=$(BIN)/tests/%)
BENCH_SRC := $(wildcard tests/bench/bench_*.c)
BENCH_BIN := $(BENCH_SRC:tests/%.c=$(BIN)/tests/%)

# hivectl: the API's command-line client (docs/hivectl.md): libcurl and
# jansson only, no libhive.
HIVECTL_SRC := $(wildcard hivectl/*.c)
HIVECTL_OBJ := $(HIVECTL_SRC:%.c=$(BUILD)/%.o)
HIVECTL_LIBS := $(shell pkg-config --libs libcurl jansson 2>/dev/null || echo -lcurl -ljansson)

# A daemon is built once its folder has its main file.
BUILT_DAEMONS := $(foreach d,$(DAEMONS),$(if $(wildcard $(d)/$(d).c),$(d)))
PROGRAMS := $(BUILT_DAEMONS:%=$(BIN)/%) $(if $(SIM_SRC),$(BIN)/minersim) \
            $(if $(PLANT_SRC),$(BIN)/plantsim) $(if $(HIVECTL_SRC),$(BIN)/hivectl)

.PHONY: all test run bench fuzz clean deps deps-test check-format
all: $(PROGRAMS)

# ---------------------------------------------------------------- packages
# Installed only when missing, so a fresh Debian 12 machine needs no setup.
DEB_BUILD := gcc make pkg-config libnng-dev libcurl4-openssl-dev libsqlite3-dev \
             libjansson-dev libcivetweb-dev libcmocka-dev libmodbus-dev libmbedtls-dev
DEB_TEST  := curl sqlite3 iproute2 docker-compose prometheus chromium systemd openssl
DEB_BENCH := wrk nmap
# HTTPS in front of apid (etc/https, powerhive-https.service, test_https):
# the TLS terminator and the tool that makes certificates.
DEB_HTTPS := stunnel4 openssl
DEB_FUZZ  := clang libclang-rt-14-dev
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
define apt_ensure
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	  grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "powerhive: installing missing Debian packages:" $$missing; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	fi
endef
deps:
	$(call apt_ensure,$(DEB_BUILD))
	$(call apt_ensure,$(DEB_HTTPS))
deps-test: deps
	$(call apt_ensure,$(DEB_TEST))

# ---------------------------------------------------------------- build
$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIBHIVE): $(LIB_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

# Each daemon: every .c in its folder; <daemon>.c holds main().
define daemon_rule
$(1)_OBJ := $$(patsubst %.c,$(BUILD)/%.o,$$(wildcard $(1)/*.c))
$(1)_LIBOBJ := $$(filter-out $(BUILD)/$(1)/$(1).o,$$($(1)_OBJ))
$(BIN)/$(1): $$($(1)_OBJ) $(LIBHIVE)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach d,$(DAEMONS),$(eval $(call daemon_rule,$(d))))

$(BIN)/minersim: $(SIM_OBJ) $(LIBHIVE)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/plantsim: $(PLANT_OBJ) $(LIBHIVE)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/hivectl: $(HIVECTL_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(HIVECTL_LIBS)

# Tests named test_<daemon>_*.c also link that daemon's objects (all but main).
test_daemon_objs = $(foreach d,$(DAEMONS),$(if $(findstring /test_$(d)_,$(1)),$($(d)_LIBOBJ)))
.SECONDEXPANSION:
$(BIN)/tests/%: $(BUILD)/tests/%.o $$(call test_daemon_objs,$$@) $(TLIB_OBJ) $(LIBHIVE)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LDLIBS)
# The allocator's bench drives apid/allocate.c alone.
$(BIN)/tests/bench/bench_allocate: $(BUILD)/apid/allocate.o
# test_power measures the balancer against apid_alloc_exact's optimum.
$(BIN)/tests/e2e/test_power: $(BUILD)/apid/allocate.o

# ---------------------------------------------------------------- test
# Every test binary runs from the top of the tree with HIVE_BIN pointing at
# the binaries under test; tests/run.sh prints one "N passed, N failed,
# N skipped" line. test_compose_up (also alone: make test-compose) runs the
# docker-compose suite on a Docker engine (tests/compose/): in the release
# pass only, since the image is built from the sources with its own flags
# (POWERHIVE_TEST_SANITIZE makes it skip), and with 15 min when it starts
# cold (docker.io, the base image and the build layers are then cached).
#
# Two tests run at once (TEST_JOBS; most end-to-end tests wait on a
# cadence most of the time: test_power used 47 CPU s in 161 s, the browser
# 56 in 133), but not those in TEST_ALONE, last and one by one: thousands
# of miners (test_fleet used 83 CPU s in 64 s), pollerd's CPU and latency
# under a full queue, 200 slow clients against a latency bound.
TEST_JOBS ?= 2
TEST_ALONE ?= test_control_jobs test_fleet test_fleet_offline test_fleet_sweep16 \
              test_slow_clients
TEST_ENV = HIVE_BIN=$(BIN) POWERHIVE_TEST_SANITIZE=$(SANITIZE) \
           TEST_JOBS="$(TEST_JOBS)" TEST_ALONE="$(TEST_ALONE)" \
           TEST_TIMEOUT_test_compose_up=$${TEST_TIMEOUT_test_compose_up:-900}
# The sanitizer pass leaves out the tests whose subject is not our C code
# under other flags: the dashboard's JavaScript (test_browser), unit files
# (test_install), Prometheus's config (test_monitoring), the image, which is
# built with its own flags (test_compose, test_compose_up), minersim's and
# plantsim's own behaviour (test_minersim, test_plantsim; the sanitized
# simulators run in every other end-to-end test), stunnel (test_https) and
# civetweb's threads under 200 slow clients (test_slow_clients); four fleet-size scenarios (test_fleet,
# test_fleet_offline, test_fleet_sweep16, test_control: thousands of miners
# for timing and counts, while the code they drive runs sanitized in
# test_apid_sweep, test_msg, test_run, test_workers, test_worker_jobs,
# test_bus_tls and test_control_jobs); and two long scenario
# tests whose code runs sanitized elsewhere: test_power (the balancer's
# cycles, fallback and dry run run in test_alerts_farm, the allocator in
# test_apid_allocate) and test_alerts (the engine fires, groups and
# notifies in test_notify and test_alerts_farm). It keeps CI well under
# its 30 minutes.
SAN_SKIP := test_browser test_install test_monitoring test_compose test_compose_up test_minersim \
            test_plantsim test_https test_slow_clients test_fleet test_fleet_offline test_fleet_sweep16 test_control test_power test_alerts
RUN_TEST_BIN := $(if $(SANITIZE),$(filter-out $(SAN_SKIP:%=$(BIN)/tests/e2e/%),$(TEST_BIN)),$(TEST_BIN))
test: deps-test
	@$(MAKE) --no-print-directory -j$$(nproc) all tests
	@$(TEST_ENV) bash tests/run.sh $(RUN_TEST_BIN)
.PHONY: tests
tests: $(TEST_BIN) $(PROGRAMS)

# The dashboard's browser test alone (it also runs inside `make test`).
.PHONY: test-browser
test-browser: deps-test
	@$(MAKE) --no-print-directory all $(BIN)/tests/e2e/test_browser
	@HIVE_BIN=$(BIN) bash tests/run.sh $(BIN)/tests/e2e/test_browser

# The whole /16 of test_fleet_sweep16: 65,000 miners (make test runs 8,000).
.PHONY: test-large
test-large: deps-test
	@$(MAKE) --no-print-directory all $(BIN)/tests/e2e/test_fleet_sweep16
	@SWEEP16_FULL=1 $(TEST_ENV) bash tests/run.sh $(BIN)/tests/e2e/test_fleet_sweep16

# The docker-compose deployment on a Docker engine alone (it also runs
# inside `make test`).
.PHONY: test-compose
test-compose: deps-test
	@$(MAKE) --no-print-directory all $(BIN)/tests/e2e/test_compose_up
	@$(TEST_ENV) bash tests/run.sh $(BIN)/tests/e2e/test_compose_up

bench: deps
	$(call apt_ensure,$(DEB_BENCH))
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@for b in $(BENCH_BIN); do HIVE_BIN=$(BIN) $$b || exit 1; done

# The whole suite against 10,000 simulated miners at the shipped cadence for
# BENCH_FLEET_SECONDS (240) after the first full sweep (tests/bench/fleet.c,
# docs/scaling.md). Minutes long: neither in `make bench` nor in `make test`.
.PHONY: bench-fleet
bench-fleet: deps
	$(call apt_ensure,$(DEB_BENCH))
	@$(MAKE) --no-print-directory all $(BIN)/tests/bench/fleet
	@HIVE_BIN=$(BIN) $(BIN)/tests/bench/fleet

FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_SECONDS ?= 30
# A target may fuzz code of a daemon too: fuzz_event reads bodies as apid does.
FUZZ_EXTRA_fuzz_event := apid/event.c apid/chips.c
build/fuzz/%: tests/fuzz/%.c $(LIB_SRC) $$(FUZZ_EXTRA_$$*)
	@mkdir -p $(@D)
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Ilibhive/include $(PKG_CFLAGS) $(MODBUS_CFLAGS) \
	  -o $@ $< $(LIB_SRC) $(FUZZ_EXTRA_$*) $(LDLIBS)
fuzz: deps
	$(call apt_ensure,$(DEB_FUZZ))
	@$(MAKE) --no-print-directory $(FUZZ_BIN)
	@for f in $(FUZZ_BIN); do n=$$(basename $$f); mkdir -p build/fuzz/corpus-$$n; \
	  echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
	  if ! $$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -artifact_prefix=build/fuzz/$$n- \
	      build/fuzz/corpus-$$n tests/fuzz/seeds/$$n >build/fuzz/$$n.log 2>&1; then \
	    tail -40 build/fuzz/$$n.log; echo "fuzz: $$n FOUND A PROBLEM (build/fuzz/$$n.log)"; exit 1; fi; \
	  tail -1 build/fuzz/$$n.log; done

# docs/bus.md's topic list, rewritten from libhive/msg.c's tables (test_msg
# fails until the page and the tables agree).
.PHONY: bus-doc
bus-doc: $(BIN)/tests/unit/test_msg
	@$(BIN)/tests/unit/test_msg --doc > build/msg-topics.md
	@awk 'BEGIN { while ((getline l < "build/msg-topics.md") > 0) doc = doc l "\n" } \
	  /^<!-- topics:end -->/ { printf "%s", doc; skip = 0 } !skip { print } \
	  /^<!-- topics:begin -->/ { skip = 1 }' docs/bus.md > build/bus.md.new && mv build/bus.md.new docs/bus.md
	@echo "docs/bus.md: topic list rewritten from the tables"

# ---------------------------------------------------------------- install
# A host install without Docker (docs/install.md): the daemons, hivectl and
# hive-certs (the bus's farm CA and certificates, docs/operations.md),
# the dashboard, a config, the systemd units and their system user. It copies
# what `make` built and builds nothing, so `sudo make install` compiles
# nothing as root. An existing config is kept; modes do not follow umask.
PREFIX      ?= /usr/local
SYSCONFDIR  ?= /etc
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
INSTALL_PROGS := $(filter $(BUILT_DAEMONS:%=$(BIN)/%) $(BIN)/hivectl,$(PROGRAMS))
INSTALL_UNITS := $(wildcard etc/systemd/*.service)
# The shipped units and config name the default PREFIX and /etc.
INSTALL_SED := s|/usr/local/|$(PREFIX)/|g; s|/etc/powerhive/|$(SYSCONFDIR)/powerhive/|g
SHARE := $(DESTDIR)$(PREFIX)/share/powerhive
.PHONY: install uninstall
install:
	@for p in $(INSTALL_PROGS); do [ -x "$$p" ] || { echo "install: $$p is missing: run make first" >&2; exit 1; }; done
	install -d -m 0755 '$(DESTDIR)$(PREFIX)/bin' '$(DESTDIR)$(UNITDIR)' '$(DESTDIR)$(SYSUSERSDIR)' \
	  '$(DESTDIR)$(SYSCONFDIR)/powerhive' '$(SHARE)'
	install -m 0755 $(INSTALL_PROGS) '$(DESTDIR)$(PREFIX)/bin/'
	install -m 0755 etc/hive-certs '$(DESTDIR)$(PREFIX)/bin/hive-certs'
	rm -rf '$(SHARE)/web'
	cd web && find . -type d -exec install -d -m 0755 '$(SHARE)/web/{}' \; && \
	  find . -type f -exec install -m 0644 {} '$(SHARE)/web/{}' \;
	for u in $(INSTALL_UNITS); do sed '$(INSTALL_SED)' $$u > '$(DESTDIR)$(UNITDIR)'/$${u##*/} && \
	  chmod 0644 '$(DESTDIR)$(UNITDIR)'/$${u##*/} || exit 1; done
	install -m 0644 etc/systemd/sysusers.d/powerhive.conf '$(DESTDIR)$(SYSUSERSDIR)/powerhive.conf'
	sed '$(INSTALL_SED)' etc/powerhive.host.json > '$(SHARE)/powerhive.json.example' && \
	  chmod 0644 '$(SHARE)/powerhive.json.example'
	sed '$(INSTALL_SED)' etc/https/stunnel.conf > '$(SHARE)/stunnel.conf.example' && \
	  chmod 0644 '$(SHARE)/stunnel.conf.example'
	@if [ -z '$(DESTDIR)' ] && command -v systemd-sysusers >/dev/null; then \
	  systemd-sysusers '$(SYSUSERSDIR)/powerhive.conf' || exit 1; fi
	@cfg='$(DESTDIR)$(SYSCONFDIR)/powerhive/powerhive.json'; \
	if [ -e "$$cfg" ]; then echo "install: kept $$cfg"; else \
	  (umask 027 && sed '$(INSTALL_SED)' etc/powerhive.host.json > "$$cfg") || exit 1; \
	  if [ -z '$(DESTDIR)' ] && getent group powerhive >/dev/null; then chgrp powerhive "$$cfg" || exit 1; fi; \
	  echo "install: wrote $$cfg (set network.subnets: docs/install.md)"; fi
	@tls='$(DESTDIR)$(SYSCONFDIR)/powerhive/stunnel.conf'; \
	if [ -e "$$tls" ]; then echo "install: kept $$tls"; else \
	  sed '$(INSTALL_SED)' etc/https/stunnel.conf > "$$tls" && chmod 0644 "$$tls" || exit 1; \
	  echo "install: wrote $$tls (HTTPS: docs/operations.md)"; fi
uninstall:
	rm -f $(foreach p,$(DAEMONS) hivectl hive-certs,'$(DESTDIR)$(PREFIX)/bin/$(p)') \
	  $(INSTALL_UNITS:etc/systemd/%='$(DESTDIR)$(UNITDIR)/%') '$(DESTDIR)$(SYSUSERSDIR)/powerhive.conf'
	rm -rf '$(SHARE)'
	@echo "uninstall: kept $(DESTDIR)$(SYSCONFDIR)/powerhive, /var/lib/powerhive and the powerhive user"

run: deps
	@$(MAKE) --no-print-directory all
	@sh etc/run.sh $(BIN)

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' -type f 2>/dev/null)
