# vgpuenv: build, test and run the toolkit.
#
# Each folder contributes a build.mk fragment that appends to the lists below,
# so adding a component never means editing this file's rules.
#   VGPUENV_SRCS      sources linked into build/vgpuenv
#   COMMON_SRCS       helpers linked into every program
#   PROGRAMS          extra programs under build/
#   UNIT_TESTS        cmocka test binaries under build/tests/
#   INTEGRATION_TESTS shell scripts run against real libvirtd, sshd, QEMU...
#   BENCHES           make bench-* targets

BUILD    ?= build
PREFIX   ?= /usr/local
CC       ?= cc
CFLAGS   ?= -O2 -g
SAN_FLAGS ?=
WARN     := -Wall -Wextra -Werror -Wno-missing-field-initializers
override CFLAGS += -std=gnu11 -D_GNU_SOURCE $(WARN) -I. -pthread -MMD -MP $(SAN_FLAGS)
override LDFLAGS += -pthread $(SAN_FLAGS)

PKGS := libvirt libguestfs libssh yaml-0.1 libcjson libxml-2.0 gnutls
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

VGPUENV_SRCS :=
COMMON_SRCS :=
PROGRAMS :=
UNIT_TESTS :=
INTEGRATION_TESTS :=
BENCHES :=

.PHONY: all
all: vgpuenv-all

include common/build.mk
# Defined right after common/build.mk so every fragment can use it in rules.
COMMON_OBJS  := $(sort $(COMMON_SRCS:%.c=$(BUILD)/obj/%.o))

include provision/base/build.mk
include provision/build.mk
include provision/vgpu/build.mk
include provision/probe/build.mk
include images/build.mk
include providers/build.mk
include cli/build.mk
include webhook/build.mk
include e2e/build.mk

# After every fragment has added its sources; tests/build.mk's rules need it.
VGPUENV_OBJS := $(sort $(VGPUENV_SRCS:%.c=$(BUILD)/obj/%.o))
include tests/build.mk
include tests/k8s/build.mk

.PHONY: vgpuenv-all
vgpuenv-all: $(BUILD)/vgpuenv $(PROGRAMS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(BUILD)/vgpuenv: $(VGPUENV_OBJS) $(COMMON_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -ldl

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---- dependencies -----------------------------------------------------------
# Every Debian package the build, the tests and the runtime need.
DEPS_BUILD := build-essential pkg-config libvirt-dev libguestfs-dev libssh-dev libyaml-dev \
	libcjson-dev libmicrohttpd-dev libgnutls28-dev libxml2-dev libcmocka-dev libegl-dev libgbm-dev zlib1g-dev \
	libgrpc-dev libprotobuf-c-dev protobuf-c-compiler
DEPS_RUN := libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils libguestfs-tools kmod \
	linux-image-amd64 mmdebstrap openssh-client dnsmasq-base iptables ca-certificates
DEPS_TEST := openssh-server curl python3 python3-jsonpatch python3-yaml golang-1.19-go wrk nginx-light clang \
	libclang-rt-14-dev valgrind gnutls-bin chromium xz-utils openssl busybox-static iproute2 procps \
	clang-format git python3-grpcio python3-grpc-tools python3-jsonschema containerd runc util-linux \
	podman
# Debian's kubectl, for manifest checks; a kubectl some other package put in
# /usr/bin (Google's Cloud SDK ships one) conflicts with it and does as well.
DEPS_TEST += $(if $(wildcard /usr/bin/kubectl),,kubernetes-client)
DEPS := $(DEPS_BUILD) $(DEPS_RUN) $(DEPS_TEST)

.PHONY: deps
deps:
	@scripts/install-deps.sh $(DEPS)

# ---- install ----------------------------------------------------------------
.PHONY: install
install: vgpuenv-all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/vgpuenv/configs
	install -m 0755 $(BUILD)/vgpuenv $(PROGRAMS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 configs/*.yaml $(DESTDIR)$(PREFIX)/share/vgpuenv/configs/

# ---- tests ------------------------------------------------------------------
.PHONY: test test-unit test-integration
test: vgpuenv-all $(UNIT_TESTS)
	@tests/run.sh $(UNIT_TESTS) $(INTEGRATION_TESTS)

test-unit: vgpuenv-all $(UNIT_TESTS)
	@tests/run.sh $(UNIT_TESTS)

test-integration: vgpuenv-all
	@tests/run.sh $(INTEGRATION_TESTS)

# Run one test: make check T=tests/integration/up_down.sh
.PHONY: check
check: vgpuenv-all $(UNIT_TESTS)
	@tests/run.sh $(T)

# ---- cluster ----------------------------------------------------------------
PROVIDER ?=
CONFIG ?= $(if $(PROVIDER),configs/$(PROVIDER).yaml,configs/local.yaml)
.PHONY: cluster-up cluster-down cluster-status
# Only the providers that drive libvirt on this host need libvirtd.
NEEDS_LIBVIRTD = $(filter-out kind kubevirtci,$(or $(PROVIDER),local))
cluster-up: vgpuenv-all
	@$(if $(NEEDS_LIBVIRTD),scripts/ensure-libvirtd.sh)
	$(BUILD)/vgpuenv up -c $(CONFIG)

cluster-down: vgpuenv-all
	@$(if $(NEEDS_LIBVIRTD),scripts/ensure-libvirtd.sh)
	$(BUILD)/vgpuenv down -c $(CONFIG)

cluster-status: vgpuenv-all
	$(BUILD)/vgpuenv status -c $(CONFIG)

.PHONY: format
format:
	clang-format -i $$(git ls-files '*.c' '*.h')

.PHONY: clean
clean:
	rm -rf $(BUILD)
