/* Files node setup owns on every node. The local provider's image carries
 * them already (images/customize.c writes the same bytes), so its nodes need
 * no write at `up`: the text lives here, below both. */
#pragma once

#define NODE_MODULES_LOAD_PATH "/etc/modules-load.d/vgpuenv.conf"
#define NODE_UDEV_RULE_PATH "/etc/udev/rules.d/70-vgpuenv-render.rules"
extern const char node_modules_load_text[];
extern const char node_udev_rule_text[];
