# images: base image build and customization (libguestfs).
VGPUENV_SRCS += images/guestfs_handle.c images/base_image.c images/customize.c images/digest.c
