#!/bin/sh
# Makes sure a libvirt daemon answers on qemu:///system. On machines with
# systemd it is socket-activated already; on containers and CI runners without
# an init system we start virtlogd and libvirtd ourselves.
set -eu
if virsh -c qemu:///system version >/dev/null 2>&1; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "libvirtd is not reachable on qemu:///system; start it (systemctl start libvirtd) or run as root" >&2
	exit 1
fi
pgrep -x virtlogd >/dev/null 2>&1 || virtlogd -d
pgrep -x libvirtd >/dev/null 2>&1 || libvirtd -d
i=0
while ! virsh -c qemu:///system version >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -gt 100 ]; then
		echo "libvirtd did not come up within 10s" >&2
		exit 1
	fi
	sleep 0.1
done
echo "libvirtd: started"
