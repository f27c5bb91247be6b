# e2e/display: the display-chain proof, `vgpuenv verify-display` and
# `make check-display` (docs/display-chain.md).
DISPLAY_SRCS := e2e/display/mbochs.c e2e/display/domain_xml.c e2e/display/observe.c \
	e2e/display/results.c e2e/display/verify.c
VGPUENV_SRCS += $(DISPLAY_SRCS)

# The in-node driver is embedded like the webhook's hook script (whose header
# webhook/build.mk generates; verify.c uploads that very file to the node).
$(BUILD)/gen/display_node_script.h: e2e/display/node-check.sh
	@mkdir -p $(dir $@)
	LC_ALL=C awk 'BEGIN { print "/* generated from e2e/display/node-check.sh */"; print "static const char display_node_script[] =" } \
		{ gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, "\\t"); print "\"" $$0 "\\n\"" } \
		END { print ";" }' $< >$@.tmp && mv $@.tmp $@

$(BUILD)/obj/e2e/display/verify.o: $(BUILD)/gen/display_node_script.h $(BUILD)/gen/hook_script.h
$(BUILD)/obj/e2e/display/verify.o: override CFLAGS += -I$(BUILD)/gen

# Brings up configs/display.yaml's node, runs verify-display, takes it down.
# Output streams (step times included); `make test` runs the same script.
DISPLAY_CONFIG ?= configs/display.yaml
.PHONY: check-display
check-display: vgpuenv-all
	@DISPLAY_CONFIG=$(DISPLAY_CONFIG) bash tests/integration/display_chain.sh
