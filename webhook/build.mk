# webhook: mesa-injector (the mutating admission webhook), its unit tests,
# libFuzzer target, benchmark and the ASan+UBSan run of the whole test suite.

# The server does not link libxml2 (with ICU and libstdc++ it was 1.7 MiB
# of its resident pages): the libxml2 rule is mesa-injector-hook-apply.
WEBHOOK_PKGS := libmicrohttpd gnutls libcjson yaml-0.1 zlib
WEBHOOK_LIBS = $(shell pkg-config --libs $(WEBHOOK_PKGS))
WEBHOOK_XML_LIBS = $(shell pkg-config --libs $(WEBHOOK_PKGS) libxml-2.0)
WEBHOOK_LIB_SRCS := webhook/config.c webhook/config_device_plugin.c webhook/patch.c \
	webhook/patch_resource.c webhook/admission.c webhook/metrics.c \
	webhook/admission_log.c webhook/tls_store.c webhook/tls_transport.c webhook/conn_guard.c \
	webhook/source_filter.c webhook/server.c \
	webhook/certs.c webhook/manifests.c webhook/manifests_device_plugin.c webhook/config_vmi_hook.c \
	webhook/program.c
WEBHOOK_LIB_OBJS = $(WEBHOOK_LIB_SRCS:%.c=$(BUILD)/obj/%.o)
WEBHOOK_OBJS = $(WEBHOOK_LIB_OBJS) $(BUILD)/obj/webhook/main.o
WEBHOOK_HOOK_OBJS = $(WEBHOOK_LIB_OBJS) $(BUILD)/obj/webhook/domain_hook.o \
	$(BUILD)/obj/webhook/hook_apply.o

# COMMON_OBJS is set after every fragment is read; prerequisites expand now,
# so name the common objects from COMMON_SRCS (common/build.mk came first).
WEBHOOK_COMMON_OBJS := $(COMMON_SRCS:%.c=$(BUILD)/obj/%.o)

PROGRAMS += $(BUILD)/mesa-injector $(BUILD)/mesa-injector-hook-apply \
	$(BUILD)/mesa-injector-device-plugin

# The hook script is embedded in the binary: `manifests` ships it in a
# ConfigMap, byte for byte the file the tests and the display proof run.
$(BUILD)/gen/hook_script.h: webhook/hook/onDefineDomain
	@mkdir -p $(dir $@)
	LC_ALL=C awk 'BEGIN { print "/* generated from webhook/hook/onDefineDomain */"; print "static const char hook_script[] =" } \
		{ gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, "\\t"); print "\"" $$0 "\\n\"" } \
		END { print ";" }' $< >$@.tmp && mv $@.tmp $@

$(WEBHOOK_OBJS) $(WEBHOOK_HOOK_OBJS): override CFLAGS += -I$(BUILD)/gen $(shell pkg-config --cflags libmicrohttpd)
# Named here too: the top Makefile's PKG_CFLAGS come from one pkg-config call
# over every library, which prints nothing where libvirt is missing (the
# image's build stage has only what mesa-injector needs).
$(BUILD)/obj/webhook/domain_hook.o $(BUILD)/obj/webhook/hook_apply.o: override CFLAGS += \
	$(shell pkg-config --cflags libxml-2.0)
$(BUILD)/obj/webhook/manifests.o: $(BUILD)/gen/hook_script.h

$(BUILD)/mesa-injector: $(WEBHOOK_OBJS) $(WEBHOOK_COMMON_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(WEBHOOK_LIBS)

$(BUILD)/mesa-injector-hook-apply: $(WEBHOOK_HOOK_OBJS) $(WEBHOOK_COMMON_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(WEBHOOK_XML_LIBS)

# ---- the device plugin: gRPC's C core + protobuf-c ---------------------------
# A program of its own (`mesa-injector device-plugin` execs it) so the
# webhook server does not load gRPC. Its messages are protoc-c code
# generated from our webhook/device_plugin_api.proto into build/gen.
DP_PROTO := webhook/device_plugin_api.proto
DP_GEN := $(BUILD)/gen/device_plugin_api.pb-c
DP_SRCS := webhook/device_plugin.c webhook/device_plugin_devices.c webhook/device_plugin_rpc.c \
	webhook/device_plugin_pb.c webhook/device_plugin_preferred.c \
	webhook/grpc_socket.c webhook/grpc_reply.c \
	webhook/device_plugin_server.c webhook/device_plugin_register.c webhook/device_plugin_watch.c
DP_OBJS = $(DP_SRCS:%.c=$(BUILD)/obj/%.o) $(DP_GEN).o
DP_LIB_OBJS = $(BUILD)/obj/webhook/config.o $(BUILD)/obj/webhook/config_device_plugin.o \
	$(BUILD)/obj/webhook/config_vmi_hook.o \
	$(BUILD)/obj/webhook/patch.o $(BUILD)/obj/webhook/patch_resource.o \
	$(BUILD)/obj/webhook/admission.o $(BUILD)/obj/webhook/metrics.o $(BUILD)/obj/webhook/program.o
# --as-needed: pkg-config lists abseil's and OpenSSL's static dependencies.
DP_LIBS = -Wl,--as-needed $(shell pkg-config --libs grpc libprotobuf-c libcjson yaml-0.1 gnutls zlib) \
	-Wl,--no-as-needed

# The C side needs the messages only (gRPC's C core carries the calls), and
# protoc-c's service stubs would name a member after Register: `register`,
# a C keyword. So protoc-c reads the file with its service blocks removed.
$(DP_GEN).c $(DP_GEN).h: $(DP_PROTO)
	@mkdir -p $(BUILD)/gen/proto
	awk '/^service /{skip=1} !skip{print} skip && /^}/{skip=0}' $< >$(BUILD)/gen/proto/$(notdir $<)
	protoc-c --proto_path=$(BUILD)/gen/proto --c_out=$(BUILD)/gen $(BUILD)/gen/proto/$(notdir $<)

$(DP_GEN).o: $(DP_GEN).c
	$(CC) $(CFLAGS) -I$(BUILD)/gen $(shell pkg-config --cflags libprotobuf-c) -c $< -o $@

$(DP_SRCS:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/webhook/device_plugin_main.o: override CFLAGS += \
	-I$(BUILD)/gen $(shell pkg-config --cflags libprotobuf-c)
$(DP_SRCS:%.c=$(BUILD)/obj/%.o): $(DP_GEN).h

$(BUILD)/mesa-injector-device-plugin: $(DP_OBJS) $(BUILD)/obj/webhook/device_plugin_main.o \
		$(DP_LIB_OBJS) $(WEBHOOK_COMMON_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(DP_LIBS)

# ---- the hook sidecar: KubeVirt's hook API, gRPC's C core + protobuf-c --------
# A program of its own (`mesa-injector hook-sidecar` execs it), run by
# virt-controller as a container of the virt-launcher pod from our image.
# Messages generated from our two .proto files like the device plugin's.
HS_PROTOS := webhook/hook_info.proto webhook/hook_callbacks.proto
HS_GEN := $(HS_PROTOS:webhook/%.proto=$(BUILD)/gen/%.pb-c)
HS_SRCS := webhook/grpc_unary.c webhook/grpc_socket.c webhook/grpc_reply.c webhook/hook_sidecar_rpc.c
HS_OBJS = $(HS_SRCS:%.c=$(BUILD)/obj/%.o) $(HS_GEN:%=%.o) $(BUILD)/obj/webhook/domain_hook.o \
	$(BUILD)/obj/webhook/program.o
HS_COMMON_OBJS := $(COMMON_BASE_SRCS:%.c=$(BUILD)/obj/%.o)
HS_LIBS = -Wl,--as-needed $(shell pkg-config --libs grpc libprotobuf-c libxml-2.0 gnutls) \
	-Wl,--no-as-needed

$(BUILD)/gen/hook_%.pb-c.c $(BUILD)/gen/hook_%.pb-c.h: webhook/hook_%.proto
	@mkdir -p $(BUILD)/gen/proto
	awk '/^service /{skip=1} !skip{print} skip && /^}/{skip=0}' $< >$(BUILD)/gen/proto/$(notdir $<)
	protoc-c --proto_path=$(BUILD)/gen/proto --c_out=$(BUILD)/gen $(BUILD)/gen/proto/$(notdir $<)

$(HS_GEN:%=%.o): %.o: %.c
	$(CC) $(CFLAGS) -I$(BUILD)/gen $(shell pkg-config --cflags libprotobuf-c) -c $< -o $@

$(HS_SRCS:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/webhook/hook_sidecar_main.o: override CFLAGS += \
	-I$(BUILD)/gen $(shell pkg-config --cflags libprotobuf-c)
$(HS_SRCS:%.c=$(BUILD)/obj/%.o): $(HS_GEN:%=%.h)

PROGRAMS += $(BUILD)/mesa-injector-hook-sidecar
$(BUILD)/mesa-injector-hook-sidecar: $(HS_OBJS) $(BUILD)/obj/webhook/hook_sidecar_main.o \
		$(HS_COMMON_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(HS_LIBS) -lpthread

# ---- unit tests (cmocka) ----------------------------------------------------
UNIT_TESTS += $(BUILD)/tests/test_webhook_patch $(BUILD)/tests/test_webhook_config \
	$(BUILD)/tests/test_webhook_domain $(BUILD)/tests/test_webhook_log \
	$(BUILD)/tests/test_webhook_hooks $(BUILD)/tests/test_webhook_conn_guard
# It sees every cJSON_InitHooks call (see the test).
$(BUILD)/tests/test_webhook_hooks: LDFLAGS += -Wl,--wrap=cJSON_InitHooks
$(BUILD)/tests/test_webhook_%: webhook/tests/test_webhook_%.c $(WEBHOOK_LIB_OBJS) $(BUILD)/obj/webhook/domain_hook.o $(WEBHOOK_COMMON_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $< $(WEBHOOK_LIB_OBJS) $(BUILD)/obj/webhook/domain_hook.o $(WEBHOOK_COMMON_OBJS) $(WEBHOOK_XML_LIBS) -lcmocka $(LDFLAGS)

# The device plugin's inventory and answers, without gRPC.
UNIT_TESTS += $(BUILD)/tests/test_webhook_device_plugin
DP_UNIT_OBJS = $(BUILD)/obj/webhook/device_plugin_devices.o $(BUILD)/obj/webhook/device_plugin_rpc.o \
	$(BUILD)/obj/webhook/device_plugin_pb.o $(BUILD)/obj/webhook/device_plugin_preferred.o \
	$(BUILD)/obj/webhook/grpc_reply.o $(DP_GEN).o
$(BUILD)/tests/test_webhook_device_plugin: webhook/tests/test_webhook_device_plugin.c $(DP_UNIT_OBJS) \
		$(DP_LIB_OBJS) $(WEBHOOK_COMMON_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -I$(BUILD)/gen $(PKG_CFLAGS) -o $@ $< $(DP_UNIT_OBJS) $(DP_LIB_OBJS) \
		$(WEBHOOK_COMMON_OBJS) $(shell pkg-config --libs libprotobuf-c libcjson yaml-0.1 gnutls zlib) \
		-lcmocka $(LDFLAGS)

# The hook sidecar's answers, without gRPC.
UNIT_TESTS += $(BUILD)/tests/test_webhook_hook_sidecar
HS_UNIT_OBJS = $(BUILD)/obj/webhook/hook_sidecar_rpc.o $(BUILD)/obj/webhook/grpc_unary.o \
	$(BUILD)/obj/webhook/grpc_socket.o $(BUILD)/obj/webhook/grpc_reply.o \
	$(HS_GEN:%=%.o) $(BUILD)/obj/webhook/domain_hook.o
$(BUILD)/tests/test_webhook_hook_sidecar: webhook/tests/test_webhook_hook_sidecar.c $(HS_UNIT_OBJS) \
		$(HS_COMMON_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -I$(BUILD)/gen $(PKG_CFLAGS) -o $@ $< $(HS_UNIT_OBJS) $(HS_COMMON_OBJS) \
		$(HS_LIBS) -lcmocka $(LDFLAGS)

# ---- libFuzzer ----------------------------------------------------------------
# Built with clang whatever CC is: -fsanitize=fuzzer is clang's.
FUZZ_TIME ?= 60
FUZZ_SRCS := webhook/fuzz/fuzz_admission.c webhook/config.c webhook/config_device_plugin.c \
	webhook/config_vmi_hook.c \
	webhook/patch.c webhook/patch_resource.c webhook/admission.c \
	webhook/metrics.c $(COMMON_BASE_SRCS) $(COMMON_SCHEMA_SRCS)
FUZZ_BIN := $(BUILD)/fuzz/fuzz_admission

$(FUZZ_BIN): $(FUZZ_SRCS) $(wildcard webhook/*.h common/*.h)
	@mkdir -p $(dir $@)
	clang -std=gnu11 -g -O1 -I. -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-o $@ $(FUZZ_SRCS) $(shell pkg-config --cflags --libs libcjson yaml-0.1 gnutls zlib)

.PHONY: fuzz
fuzz: $(FUZZ_BIN)
	@mkdir -p $(BUILD)/fuzz/corpus
	$(FUZZ_BIN) -max_total_time=$(FUZZ_TIME) -timeout=5 -rss_limit_mb=1024 -print_final_stats=1 \
		-artifact_prefix=$(BUILD)/fuzz/ $(BUILD)/fuzz/corpus webhook/fuzz/corpus

# ---- sanitizers: the whole suite, rebuilt in its own tree -------------------
ASAN_BUILD ?= build/asan
.PHONY: test-asan
test-asan:
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		$(MAKE) BUILD=$(ASAN_BUILD) \
		SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
		MESA_INJECTOR=$(ASAN_BUILD)/mesa-injector TEST_LOG_DIR=$(ASAN_BUILD)/test-logs test

# ---- benchmark ----------------------------------------------------------------
BENCHES += bench-webhook
.PHONY: bench-webhook
bench-webhook: $(BUILD)/mesa-injector
	MESA_INJECTOR=$(BUILD)/mesa-injector BUILD=$(BUILD) webhook/bench/bench.sh

BENCHES += bench-device-plugin
.PHONY: bench-device-plugin
bench-device-plugin: $(BUILD)/mesa-injector $(BUILD)/mesa-injector-device-plugin
	MESA_INJECTOR=$(BUILD)/mesa-injector BUILD=$(BUILD) webhook/bench/device_plugin_bench.sh

# The API server's reviews while one source holds 10,000 idle or slow
# connections: p99, errors, peak RSS (webhook/bench/hostile.sh).
BENCHES += bench-webhook-hostile
.PHONY: bench-webhook-hostile
bench-webhook-hostile: $(BUILD)/mesa-injector
	MESA_INJECTOR=$(BUILD)/mesa-injector BUILD=$(BUILD) webhook/bench/hostile.sh
