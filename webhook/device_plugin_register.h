/* Register with the kubelet: one RegisterRequest on kubelet.sock, with a
 * deadline, cancelled early when stop() says so. */
#pragma once

#include <stdbool.h>

#include "webhook/config.h"

/* 0 when the kubelet accepted; -ECANCELED when stop(userdata) turned true
 * while waiting; -ETIMEDOUT past the deadline; -ECONNREFUSED when the
 * kubelet is not listening; -EPROTO when it refused (logged with its
 * message). */
int dp_register(const struct injector_device_plugin *d, bool (*stop)(void *), void *userdata);
