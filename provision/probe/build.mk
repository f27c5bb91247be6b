# provision/probe: the node-side render-node probe (build/vgpuenv-probe), the
# libssh node access module, and the ssh-tool test driver.
#
# vgpuenv-probe runs on the nodes, not here: it links only libc and libdl
# (mesa is dlopen()ed) so it starts on any node and names a missing library.

# provision/ssh.c is part of the vgpuenv program (filter-out: no duplicate if
# provision/build.mk lists it too).
VGPUENV_SRCS += $(filter-out $(VGPUENV_SRCS),provision/ssh.c)

PROGRAMS += $(BUILD)/vgpuenv-probe

$(BUILD)/vgpuenv-probe: $(BUILD)/obj/provision/probe/probe.o
	$(CC) $(LDFLAGS) -o $@ $^ -ldl

# Test driver for tests/integration/ssh_*.sh; not installed.
SSH_TOOL := $(BUILD)/tests/ssh-tool
SSH_TOOL_OBJS := $(BUILD)/obj/tests/tools/ssh-tool.o $(BUILD)/obj/provision/ssh.o \
	$(BUILD)/obj/common/log.o $(BUILD)/obj/common/util.o $(BUILD)/obj/common/spawn.o

$(SSH_TOOL): $(SSH_TOOL_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -ldl

.PHONY: test-tools
test-tools: $(SSH_TOOL)
test check test-integration: test-tools
