# provision/vgpu: the fake NVIDIA T4 vGPU (module/, kernel code built by
# Kbuild for each node's kernel) and the host-side builds (kmod.c).
VGPUENV_SRCS += provision/vgpu/kmod.c
