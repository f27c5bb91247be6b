/* mesa-injector's kubelet device plugin: advertises each render node as
 * devicePlugin.sharesPerNode devices of devicePlugin.resourceName and hands
 * a DeviceSpec for it to every container the kubelet allocates them to. */
#pragma once

#include "webhook/config.h"

/* Runs until SIGINT/SIGTERM (blocked by the caller in every thread): 0
 * after a clean stop, negative errno when it cannot run at all. */
int device_plugin_run(const struct injector_config *c);
