# providers: one file per backend plus the registry.
VGPUENV_SRCS += providers/registry.c providers/local.c providers/local_objects.c \
	providers/local_xml.c
VGPUENV_SRCS += providers/kcli.c providers/kcli_domains.c providers/kubevirtci.c \
	providers/kubevirtci_preflight.c providers/kubevirtci_cluster.c providers/kind.c

# make bench-up: cold/warm up for 1 and 3 nodes, customization vs virt-customize.
BENCHES += bench-up
.PHONY: bench-up
bench-up: vgpuenv-all
	@scripts/bench-up.sh
