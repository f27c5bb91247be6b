# provision/base: what every layer above uses — the config, the run context
# (cancellation, running programs), the state file, node access over libssh
# and the KVM/TCG verdict. It includes nothing from providers/, images/ or
# the orchestration in provision/.
BASE_SRCS := provision/base/config.c provision/base/context.c provision/base/state.c \
	provision/base/ssh.c provision/base/accel.c
VGPUENV_SRCS += $(BASE_SRCS)
# Objects other programs link to reach nodes (tests/tools/ssh-tool).
SSH_OBJS := $(BUILD)/obj/provision/base/ssh.o
