COMMON_SRCS += common/log.c common/util.c common/spawn.c common/yaml_schema.c \
	common/cancel.c common/buf.c common/proc.c
