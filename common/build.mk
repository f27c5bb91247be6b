# The pieces with no library of their own (other folders' programs that
# link only a few common objects name these), and the YAML schema reader.
COMMON_BASE_SRCS := common/log.c common/util.c common/buf.c
COMMON_SCHEMA_SRCS := common/yaml_schema.c
COMMON_SRCS += common/log.c common/util.c common/yaml_schema.c \
	common/cancel.c common/buf.c common/proc.c common/thread.c
