# Shared test plumbing. cmocka unit tests: one binary per tests/unit/test_*.c
# (and <component>/tests/test_*.c registered by the component's build.mk).
UNIT_TEST_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_TESTS += $(UNIT_TEST_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
INTEGRATION_TESTS += $(sort $(wildcard tests/integration/*.sh))

# A unit test links the program's objects except its main().
TEST_LINK_OBJS = $(filter-out $(BUILD)/obj/cli/main.o,$(VGPUENV_OBJS)) $(COMMON_OBJS)

$(BUILD)/tests/%: tests/unit/%.c $(VGPUENV_OBJS) $(COMMON_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $< $(TEST_LINK_OBJS) $(PKG_LIBS) -lcmocka -ldl $(LDFLAGS)

# Test driver for tests/integration/ssh_*.sh; not installed.
SSH_TOOL := $(BUILD)/tests/ssh-tool
$(SSH_TOOL): $(BUILD)/obj/tests/tools/ssh-tool.o $(SSH_OBJS) $(COMMON_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -ldl

.PHONY: test-tools
test-tools: $(SSH_TOOL)
test check test-integration: test-tools
