# e2e: KubeVirt functional tests with the vGPU display, the Kind-vs-VM matrix
# and its reports (see docs/e2e.md).
E2E_SRCS := e2e/junit.c e2e/junit_v1.c e2e/junit_write.c e2e/progress.c e2e/functest.c \
	e2e/collect.c e2e/checkout.c e2e/suite_config.c e2e/webhook_check.c \
	e2e/verdict.c e2e/run_info.c e2e/run.c e2e/report.c \
	e2e/report_html.c e2e/matrix.c e2e/matrix_run.c
VGPUENV_SRCS += $(E2E_SRCS)

# make e2e CONFIG=configs/kcli.yaml KUBEVIRT_DIR=../kubevirt [FOCUS=...] [SKIP=...]
#   runs the MediatedDevices focus against the cluster of CONFIG, writes
#   report.md/report.html into the run directory and, under GitHub Actions,
#   appends the Markdown to $GITHUB_STEP_SUMMARY. Exit status is the tests'.
# make functest ...: the same run, but the focus and skip come from
#   KUBEVIRT_E2E_FOCUS / KUBEVIRT_E2E_SKIP like KubeVirt's own `make functest`.
# make e2e-matrix MATRIX=configs/matrix.yaml [KUBEVIRT_DIR=...] [E2E_UP=1]
KUBEVIRT_DIR ?=
FOCUS ?=
SKIP ?=
# VGPU_DISPLAY for a KubeVirt that reads it: auto, on or off (KubeVirt main: on)
E2E_DISPLAY ?=
# the fake vGPU's display (dmabuf, region, none) and the expected result
E2E_VGPU_DISPLAY ?=
E2E_EXPECT ?=
E2E_EXPECT_MESSAGE ?=
# the run's name in reports (default: the cluster name)
E2E_NAME ?=
E2E_RUN_DIR ?= _e2e/$(basename $(notdir $(CONFIG)))
MATRIX ?= configs/matrix.yaml
E2E_UP ?=

E2E_RUN_FLAGS = --run-dir $(E2E_RUN_DIR) $(if $(E2E_DISPLAY),--display $(E2E_DISPLAY)) \
	$(if $(E2E_NAME),--name $(E2E_NAME)) $(if $(E2E_VGPU_DISPLAY),--vgpu-display $(E2E_VGPU_DISPLAY)) \
	$(if $(E2E_EXPECT),--expect $(E2E_EXPECT)) \
	$(if $(E2E_EXPECT_MESSAGE),--expect-message '$(E2E_EXPECT_MESSAGE)')

define e2e_report_and_exit
	if [ -f $(E2E_RUN_DIR)/run.json ]; then \
		$(BUILD)/vgpuenv e2e report --format markdown --out $(E2E_RUN_DIR)/report.md $(E2E_RUN_DIR); \
		$(BUILD)/vgpuenv e2e report --format html --out $(E2E_RUN_DIR)/report.html $(E2E_RUN_DIR); \
		if [ -n "$$GITHUB_STEP_SUMMARY" ]; then cat $(E2E_RUN_DIR)/report.md >>"$$GITHUB_STEP_SUMMARY"; fi; \
	fi; \
	exit $$rc
endef

.PHONY: e2e functest e2e-matrix
e2e: vgpuenv-all
	@test -n "$(KUBEVIRT_DIR)" || { echo "make e2e: set KUBEVIRT_DIR=/path/to/kubevirt" >&2; exit 2; }
	@rc=0; $(BUILD)/vgpuenv e2e run -c $(CONFIG) --kubevirt $(KUBEVIRT_DIR) \
		$(E2E_RUN_FLAGS) $(if $(FOCUS),--focus '$(FOCUS)') \
		$(if $(SKIP),--skip '$(SKIP)') || rc=$$?; \
	$(e2e_report_and_exit)

functest: vgpuenv-all
	@test -n "$(KUBEVIRT_DIR)" || { echo "make functest: set KUBEVIRT_DIR=/path/to/kubevirt" >&2; exit 2; }
	@rc=0; $(BUILD)/vgpuenv e2e run -c $(CONFIG) --kubevirt $(KUBEVIRT_DIR) \
		$(E2E_RUN_FLAGS) $${KUBEVIRT_E2E_FOCUS:+--focus "$$KUBEVIRT_E2E_FOCUS"} \
		$${KUBEVIRT_E2E_SKIP:+--skip "$$KUBEVIRT_E2E_SKIP"} || rc=$$?; \
	$(e2e_report_and_exit)

e2e-matrix: vgpuenv-all
	$(BUILD)/vgpuenv e2e matrix -c $(MATRIX) $(if $(KUBEVIRT_DIR),--kubevirt $(KUBEVIRT_DIR)) \
		$(if $(E2E_UP),--up)
include e2e/display/build.mk
