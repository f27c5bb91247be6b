# provision/base: what every layer above uses — the config, the run context
# (cancellation, running programs), the state file, node access over libssh
# and the KVM/TCG verdict. It includes nothing from providers/, images/ or
# the orchestration in provision/.
BASE_SRCS := provision/base/config.c provision/base/context.c provision/base/state.c \
	provision/base/ssh_keys.c provision/base/ssh_connect.c \
	provision/base/ssh_exec.c provision/base/ssh_sftp.c provision/base/accel.c \
	provision/base/plan.c provision/base/node_files.c
VGPUENV_SRCS += $(BASE_SRCS)
# Objects other programs link to reach nodes (tests/tools/ssh-tool).
SSH_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(filter provision/base/ssh_%,$(BASE_SRCS)))

# The init of the KVM probe's initramfs (accel.c), next to vgpuenv.
PROGRAMS += $(BUILD)/vgpuenv-kvm-init
$(BUILD)/vgpuenv-kvm-init: provision/base/accel_init.c provision/base/accel.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Os -Wall -Wextra -Werror -I. -static -o $@ $<
