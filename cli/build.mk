# cli: the vgpuenv dispatcher and one file per subcommand.
VGPUENV_SRCS += cli/main.c cli/cli.c cli/cmd_up.c cli/cmd_down.c cli/cmd_status.c \
	cli/cmd_ssh.c cli/cmd_image.c cli/cmd_probe.c cli/cmd_doctor.c cli/cmd_config.c \
	cli/cmd_e2e.c cli/cmd_verify_display.c cli/cmd_vgpu.c
