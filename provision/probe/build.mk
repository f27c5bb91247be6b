# provision/probe: the node-side render-node probe (build/vgpuenv-probe).
#
# vgpuenv-probe runs on the nodes, not here: it links only libc and libdl
# (mesa is dlopen()ed) so it starts on any node and names a missing library.
PROGRAMS += $(BUILD)/vgpuenv-probe

$(BUILD)/vgpuenv-probe: $(BUILD)/obj/provision/probe/probe.o
	$(CC) $(LDFLAGS) -o $@ $^ -ldl
