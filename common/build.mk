COMMON_SRCS += common/log.c common/util.c common/yaml_schema.c \
	common/cancel.c common/buf.c common/proc.c common/thread.c
