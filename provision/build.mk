# provision: the orchestration behind up/down/status above the providers —
# node setup, cluster setup, the up and down plans.
VGPUENV_SRCS += provision/orchestrate.c provision/node_setup.c provision/node_packages.c \
	provision/node_setup_plan.c provision/cluster_setup.c provision/cluster_check.c \
	provision/cluster_images.c provision/cluster_doctor.c
