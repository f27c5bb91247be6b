# provision: sources and tests (see the top-level Makefile for the lists)
VGPUENV_SRCS += provision/accel.c
VGPUENV_SRCS += provision/node_setup.c
VGPUENV_SRCS += provision/config.c
VGPUENV_SRCS += provision/orchestrate.c
VGPUENV_SRCS += provision/state.c
VGPUENV_SRCS += provision/context.c
VGPUENV_SRCS += provision/cluster_setup.c
