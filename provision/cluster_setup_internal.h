/* The KubeVirt CR patch of provision/cluster_setup.c, exposed for the unit
 * test: a JSON merge patch that adds the fake-vGPU configuration to what the
 * CR (current_json, `kubectl get kubevirt -o json`, may be NULL) already has. */
#pragma once

char *cluster_kubevirt_patch(const char *current_json);
