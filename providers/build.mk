# providers: sources and tests (see the top-level Makefile for the lists)
VGPUENV_SRCS += providers/kcli.c providers/kcli_domains.c providers/kubevirtci.c providers/kind.c
