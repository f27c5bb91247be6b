# The real-Kubernetes test harness (docs/k8s-harness.md). Its programs are
# built by tests/k8s/build.sh from the versions tests/k8s/go.mod pins, on
# first use (make test builds them through the k8s_* integration tests).
#   make k8s-up     etcd, kube-apiserver, containerd, kubelet on this machine
#   make k8s-down   stop and remove all of it (also after a crashed k8s-up)
#   make bench-k8s  webhook latency as the API server measures it, start times
.PHONY: k8s-build k8s-up k8s-down k8s-status
# Before the tests, so a cold build shows its own time rather than the first
# k8s test's. Without Go >= 1.26 build.sh says SKIP and the k8s tests skip.
k8s-build:
	@tests/k8s/build.sh >/dev/null || [ $$? -eq 77 ]

test check test-integration: k8s-build

k8s-up:
	@tests/k8s/harness up

k8s-down:
	@tests/k8s/harness down

k8s-status:
	@tests/k8s/harness status

BENCHES += bench-k8s
.PHONY: bench-k8s
bench-k8s: $(BUILD)/mesa-injector
	@tests/k8s/bench.sh

# Test driver for tests/integration/k8s_cluster_setup.sh: cluster setup of
# provision/ against the harness's API server; not installed.
CLUSTER_SETUP_TOOL := $(BUILD)/tests/cluster-setup-tool
$(CLUSTER_SETUP_TOOL): $(BUILD)/obj/tests/k8s/cluster-setup-tool.o $(TEST_LINK_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -ldl

test-tools: $(CLUSTER_SETUP_TOOL)
