#!/bin/sh
# Node side of the fake NVIDIA T4 vGPU (provision/vgpu/vgpu.c): one verb per
# call, each printing "key=value" lines that vgpu.c reads; "changed=" lines
# say what a call did, "error=" why it stopped. Runs as root on a VM node or
# on the Kind host, POSIX sh and the usual tools (kmod, coreutils).
#
# It is embedded in build/vgpuenv and uploaded to
# /usr/local/lib/vgpuenv/vgpu-node.sh. Every verb checks before it writes, so
# a second run on a set-up node changes nothing, and a verb that refuses
# (instances in use, no headers) has changed nothing either.
set -u
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH

MOD=vgpuenv_t4
DRV=vgpuenv-t4
KVER=$(uname -r)
INSTALL_DIR=/lib/modules/$KVER/updates/vgpuenv
KO=$INSTALL_DIR/$MOD.ko
STAMP=$INSTALL_DIR/source.sha256
CONF=/etc/modprobe.d/vgpuenv-vgpu.conf

die() {
	printf 'error=%s\n' "$*"
	exit 1
}

# PCI functions our driver drives: QEMU's pci-testdev (1b36:0005).
pci_parents() {
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/vendor" 2>/dev/null)" = 0x1b36 ] || continue
		[ "$(cat "$d/device" 2>/dev/null)" = 0x0005 ] || continue
		basename "$d"
	done
}

# Our mdev instances (their driver is ours), one UUID per line.
our_instances() {
	for m in /sys/bus/mdev/devices/*; do
		[ -e "$m" ] || continue
		[ "$(basename "$(readlink -f "$m/driver")")" = "$DRV-vgpu" ] && basename "$m"
	done
	return 0
}

count_instances() {
	our_instances | wc -l | tr -d ' '
}

# Our parents under /sys/class/mdev_bus: PCI functions and virtual
# ("nvidia", "nvidia.N") devices whose driver (named "nvidia", as NVIDIA's
# is, see module/vgpuenv_t4.c) belongs to our module.
our_parents() {
	for p in /sys/class/mdev_bus/*; do
		[ -e "$p/driver/module" ] || continue
		[ "$(basename "$(readlink -f "$p/driver/module")")" = "$MOD" ] && basename "$p"
	done
	return 0
}

conf_text() {
	printf '# Written by vgpuenv: the fake NVIDIA T4 vGPU (provision/vgpu/).\n'
	printf 'options %s display=%s virtual_parents=%s\n' "$MOD" "$1" "$2"
	printf 'softdep %s post: vfio_iommu_type1\n' "$MOD"
}

# The module unloaded, refused while an instance of ours exists (how to
# remove one: $1, for the message).
unload_unused() {
	n=$(count_instances)
	[ "$n" -eq 0 ] ||
		die "$n mdev instance(s) of $MOD exist ($(our_instances | tr '\n' ' ')): remove them first$1; nothing was changed"
	if [ -d "/sys/module/$MOD" ]; then
		out=$(rmmod "$MOD" 2>&1) || die "rmmod $MOD failed: $out"
		echo "changed=unloaded $MOD"
	fi
	return 0
}

verb=${1:-}
[ $# -gt 0 ] && shift
case $verb in
facts)
	echo "kernel=$KVER"
	v=$(dpkg-query -W -f '${Version}' "linux-image-$KVER" 2>/dev/null) && [ -n "$v" ] &&
		echo "kernel-package-version=$v"
	if [ -f "/lib/modules/$KVER/build/Makefile" ]; then echo build-dir=yes; else echo build-dir=no; fi
	if command -v make >/dev/null && { command -v gcc || command -v cc; } >/dev/null; then
		echo compiler=yes
	else
		echo compiler=no
	fi
	[ -f "$STAMP" ] && echo "installed-source=$(cat "$STAMP")"
	[ -f "$KO" ] && echo "installed-srcversion=$(modinfo -F srcversion "$KO" 2>/dev/null)"
	if [ -d "/sys/module/$MOD" ]; then
		echo loaded=yes
		echo "loaded-srcversion=$(cat "/sys/module/$MOD/srcversion" 2>/dev/null)"
		echo "loaded-display=$(cat "/sys/module/$MOD/parameters/display" 2>/dev/null)"
	else
		echo loaded=no
	fi
	echo "pci-parents=$(pci_parents | tr '\n' ' ')"
	echo "instances=$(count_instances)"
	;;
install)
	# install KO DIGEST: the module built for this kernel, as a file under
	# /lib/modules so that udev loads it at boot for the pci-testdev.
	src=$1 digest=$2
	[ -f "$src" ] || die "no module at $src"
	have=$(modinfo -F vermagic "$src" 2>/dev/null | cut -d' ' -f1)
	[ "$have" = "$KVER" ] || die "$src is built for kernel '$have', this node runs $KVER"
	mkdir -p "$INSTALL_DIR" || die "cannot create $INSTALL_DIR"
	if ! cmp -s "$src" "$KO"; then
		cp "$src" "$KO.new" && mv "$KO.new" "$KO" || die "cannot install $KO"
		depmod -a "$KVER" || die "depmod -a $KVER failed"
		echo "changed=installed $KO"
	fi
	printf '%s\n' "$digest" >"$STAMP.new" && mv "$STAMP.new" "$STAMP"
	rm -f "$src"
	;;
build)
	# build DIR: compile DIR's sources against this kernel's headers (the
	# RHEL family's kernel-devel), with a deadline.
	dir=$1
	[ -f "/lib/modules/$KVER/build/Makefile" ] ||
		die "kernel $KVER has no headers on this node (/lib/modules/$KVER/build): install kernel-devel-$KVER (RHEL family) or linux-headers-$KVER (Debian family), or set vgpu: none"
	command -v make >/dev/null && { command -v gcc || command -v cc; } >/dev/null ||
		die "building $MOD on this node needs make and gcc (dnf install make gcc), or set vgpu: none"
	if ! out=$(cd "$dir" && timeout 600 make -C "/lib/modules/$KVER/build" M="$dir" modules 2>&1); then
		printf '%s\n' "$out" | tail -n 15 | sed 's/^/build: /'
		die "building $MOD for kernel $KVER failed or took longer than 600 s (see the build: lines)"
	fi
	[ -f "$dir/$MOD.ko" ] || die "make left no $dir/$MOD.ko"
	echo "built=$dir/$MOD.ko"
	;;
load)
	# load MODE VIRTUAL_PARENTS: the module loaded with that display mode
	# for new instances; replaced only when no instance exists.
	mode=$1 vparents=$2
	case $mode in dmabuf | region) ;; *) die "display mode '$mode' is not dmabuf or region" ;; esac
	[ -f "$KO" ] || die "$KO is not installed"
	for m in vfio vfio_iommu_type1 mdev; do
		modprobe "$m" 2>/dev/null || die "modprobe $m failed: this kernel has no vfio/mdev modules (CONFIG_VFIO_MDEV)"
	done
	want=$(modinfo -F srcversion "$KO")
	if [ -d "/sys/module/$MOD" ]; then
		have=$(cat "/sys/module/$MOD/srcversion")
		hv=$(cat "/sys/module/$MOD/parameters/virtual_parents")
		if [ "$have" != "$want" ] || [ "$hv" != "$vparents" ]; then
			n=$(count_instances)
			[ "$n" -eq 0 ] ||
				die "$MOD is loaded in another version or setup and $n mdev instance(s) of it exist ($(our_instances | tr '\n' ' ')): remove them (echo 1 > /sys/bus/mdev/devices/UUID/remove) before it can be replaced"
			rmmod "$MOD" || die "rmmod $MOD failed"
			echo "changed=unloaded the previous $MOD"
		fi
	fi
	if ! [ -f "$CONF" ] || [ "$(conf_text "$mode" "$vparents")" != "$(cat "$CONF")" ]; then
		conf_text "$mode" "$vparents" >"$CONF.new" && mv "$CONF.new" "$CONF" || die "cannot write $CONF"
		echo "changed=wrote $CONF"
	fi
	if ! [ -d "/sys/module/$MOD" ]; then
		out=$(modprobe "$MOD" 2>&1) || die "modprobe $MOD failed: $out $(dmesg 2>/dev/null | grep -i "$MOD\|vgpuenv" | tail -n 2 | tr '\n' ' ')"
		echo "changed=loaded $MOD (display $mode)"
	elif [ "$(cat "/sys/module/$MOD/parameters/display")" != "$mode" ]; then
		echo "$mode" >"/sys/module/$MOD/parameters/display" || die "cannot set the display mode"
		echo "changed=display of new instances set to $mode"
		n=$(count_instances)
		[ "$n" -gt 0 ] && echo "warning=$n existing instance(s) keep the display they were created with"
	fi
	# Parents appear when the PCI driver has bound (udev may race us).
	want_parents=$(($(pci_parents | wc -l) + vparents))
	i=0
	while [ "$(our_parents | wc -l)" -lt "$want_parents" ] && [ $i -lt 50 ]; do
		sleep 0.2
		i=$((i + 1))
	done
	[ "$(our_parents | wc -l)" -ge "$want_parents" ] ||
		die "$MOD is loaded but only $(our_parents | wc -l) of $want_parents parents appeared under /sys/class/mdev_bus"
	;;
set-display)
	# set-display MODE: what new instances get (verify-display's region run).
	[ -d "/sys/module/$MOD" ] || die "$MOD is not loaded"
	echo "previous=$(cat "/sys/module/$MOD/parameters/display")"
	echo "$1" >"/sys/module/$MOD/parameters/display" || die "display mode '$1' refused"
	;;
check)
	# check [all]: our parents and their types (all: every parent, for a
	# node's own vGPU driver). One line per type:
	# type=PARENT|TYPE|AVAILABLE|NAME|DESCRIPTION
	if [ "${1:-}" = all ]; then
		parents=$(ls /sys/class/mdev_bus 2>/dev/null)
	else
		parents=$(our_parents)
	fi
	[ -d "/sys/module/$MOD" ] && echo "display=$(cat "/sys/module/$MOD/parameters/display")"
	for p in $parents; do
		drv=
		[ -e "/sys/class/mdev_bus/$p/driver" ] &&
			drv=$(basename "$(readlink -f "/sys/class/mdev_bus/$p/driver")")
		echo "parent=$p|${drv:-none}"
		for t in /sys/class/mdev_bus/"$p"/mdev_supported_types/*; do
			[ -d "$t" ] || continue
			printf 'type=%s|%s|%s|%s|%s\n' "$p" "$(basename "$t")" \
				"$(cat "$t/available_instances" 2>/dev/null)" \
				"$(cat "$t/name" 2>/dev/null | tr -d '|\n')" \
				"$(cat "$t/description" 2>/dev/null | tr -d '|\n')"
		done
	done
	echo "instances=$(count_instances)"
	;;
unload)
	unload_unused " (echo 1 > /sys/bus/mdev/devices/UUID/remove)"
	;;
remove)
	# unload, then uninstall (vgpu: none).
	unload_unused ""
	if [ -e "$KO" ] || [ -e "$CONF" ]; then
		rm -f "$KO" "$STAMP" "$CONF"
		rmdir "$INSTALL_DIR" 2>/dev/null
		depmod -a "$KVER"
		echo "changed=uninstalled $MOD"
	fi
	;;
*)
	die "unknown verb '$verb'"
	;;
esac
exit 0
