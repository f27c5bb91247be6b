# providers: one file per backend plus the registry.
VGPUENV_SRCS += providers/registry.c providers/local.c providers/local_xml.c
VGPUENV_SRCS += providers/kcli.c providers/kcli_domains.c providers/kubevirtci.c providers/kind.c
