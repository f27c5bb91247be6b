#!/bin/sh
# In-node driver of `vgpuenv verify-display`: the steps that must run as root
# on the node, one verb per call, each printing "key=value" lines that
# e2e/display/verify.c reads (and the raw libvirt/QEMU output prefixed with
# "virsh: " or "qemu-log: ", which the table quotes as the observation).
#
# It is embedded in build/vgpuenv and uploaded to /var/lib/vgpuenv-display
# (not /run: it is noexec on systemd nodes, and the hook must be executed the
# way the sidecar-shim executes it), so the node needs nothing of ours. POSIX sh plus the tools the display image
# profile installs (libvirt, QEMU, eglinfo).
#
# Everything it changes on the node is undone by `cleanup`, which is also
# what a run calls first, so a run killed midway is repaired by the next one:
# libGL bind mounts, an unbound virtio-gpu, domains, the mdev instance.
set -u

DIR=/var/lib/vgpuenv-display
URI=qemu:///system
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH

die() {
	printf 'error=%s\n' "$1"
	exit 1
}

virsh_() {
	virsh -q -c "$URI" "$@"
}

# The directory holding the system's libGL.so.1 (multiarch path on Debian,
# /usr/lib64 on RHEL).
gl_libdir() {
	p=$(ldconfig -p 2>/dev/null | sed -n 's/.*libGL\.so\.1 .*=> \(.*\)$/\1/p' | head -n 1)
	[ -n "$p" ] && dirname "$p"
}

# Undo what hide_mesa did.
restore_mesa() {
	[ -f "$DIR/hidden-libs" ] || return 0
	while read -r p; do
		umount "$p" 2>/dev/null
	done <"$DIR/hidden-libs"
	rm -f "$DIR/hidden-libs"
}

# Make libGL.so.1 and libOpenGL.so.0 unusable for every process started from
# now on, QEMU included (libvirtd copies the mount table into QEMU's own mount
# namespace at start): an empty file is bind-mounted over each library, so
# dlopen() fails like it does when mesa/libglvnd is not installed. Setting
# LD_LIBRARY_PATH would not reach QEMU: libvirtd starts it with a clean
# environment.
hide_mesa() {
	libdir=$(gl_libdir) || die "libGL.so.1 is not installed on this node (ldconfig -p)"
	: >"$DIR/empty"
	: >"$DIR/hidden-libs"
	for l in libGL.so.1 libOpenGL.so.0; do
		[ -e "$libdir/$l" ] || continue
		real=$(readlink -f "$libdir/$l")
		mount --bind "$DIR/empty" "$real" || die "cannot bind-mount over $real"
		printf '%s\n' "$real" >>"$DIR/hidden-libs"
		printf 'hidden=%s\n' "$real"
	done
}

# Undo what hide_render_node did.
restore_render_node() {
	[ -f "$DIR/unbound-gpu" ] || return 0
	dev=$(cat "$DIR/unbound-gpu")
	echo "$dev" >/sys/bus/virtio/drivers/virtio_gpu/bind 2>/dev/null
	i=0
	while [ ! -e /dev/dri/renderD128 ] && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	udevadm settle -t 10 2>/dev/null
	rm -f "$DIR/unbound-gpu"
	[ -e /dev/dri/renderD128 ] || die "virtio-gpu $dev did not come back after rebinding"
	printf 'restored=%s mode=%s\n' "$dev" "$(stat -c %a /dev/dri/renderD128)"
}

# Turn this node into one without a render node, as with `gpu: none`: the
# virtio-gpu device is unbound from its driver, so the kernel has no DRM
# device and /dev/dri/renderD128 disappears (not only hidden from a path).
hide_render_node() {
	[ -e /dev/dri/renderD128 ] || die "no /dev/dri/renderD128 to take away"
	dev=
	for d in /sys/bus/virtio/drivers/virtio_gpu/virtio*; do
		[ -e "$d" ] && dev=$(basename "$d") && break
	done
	[ -n "$dev" ] || die "renderD128 does not come from virtio_gpu: not unbinding anything"
	printf '%s\n' "$dev" >"$DIR/unbound-gpu"
	echo "$dev" >/sys/bus/virtio/drivers/virtio_gpu/unbind || die "cannot unbind $dev from virtio_gpu"
	i=0
	while [ -e /dev/dri/renderD128 ] && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -e /dev/dri/renderD128 ] && die "/dev/dri/renderD128 still exists after unbinding $dev"
	printf 'unbound=%s\n' "$dev"
}

remove_domain() {
	virsh_ domstate "$1" >/dev/null 2>&1 || return 0
	virsh_ destroy "$1" >/dev/null 2>&1
	virsh_ undefine "$1" >/dev/null 2>&1
	printf 'removed-domain=%s\n' "$1"
}

# Start a defined domain paused (display init happens at device realize, no
# guest needed) and report what libvirt and QEMU said.
start_domain() {
	name=$1 xml=$2
	remove_domain "$name" >/dev/null
	out=$(virsh_ define "$xml" 2>&1) || {
		printf 'virsh: %s\n' "$out" | tr '\n' ' '
		echo
		die "virsh define $xml failed"
	}
	log=/var/log/libvirt/qemu/$name.log
	before=0
	[ -f "$log" ] && before=$(wc -c <"$log")
	if out=$(virsh_ start --paused "$name" 2>&1); then
		echo "result=started"
	else
		echo "result=failed"
	fi
	printf '%s\n' "$out" | sed '/^$/d; s/^/virsh: /'
	if [ -f "$log" ]; then
		tail -c +$((before + 1)) "$log" | grep -v '^[A-Z_]*=\|^/usr/bin/qemu\|^ *-' | sed 's/^/qemu-log: /'
		# The -display option libvirt generated for QEMU, from its command line.
		tail -c +$((before + 1)) "$log" | tr ' ' '\n' | grep -A1 -x -- '-display' | tail -n 1 | sed 's/^/display-arg=/'
	fi
	pidfile=/run/libvirt/qemu/$name.pid
	if [ -f "$pidfile" ] && pid=$(cat "$pidfile") && [ -d "/proc/$pid" ]; then
		echo "state=$(virsh_ domstate "$name")"
	fi
}

verb=${1:-}
[ $# -gt 0 ] && shift
case $verb in
facts)
	kver=$(uname -r)
	echo "kernel=$kver"
	v=$(dpkg-query -W -f '${Version}' "linux-image-$kver" 2>/dev/null) && echo "kernel-package-version=$v"
	if [ -e /dev/dri/renderD128 ]; then
		drv=$(basename "$(readlink -f /sys/class/drm/renderD128/device/driver)")
		# virtio-gpu's DRM device hangs off the PCI device (driver virtio-pci).
		ls /sys/bus/virtio/drivers/virtio_gpu/virtio* >/dev/null 2>&1 && drv=virtio_gpu
		echo "render-node=/dev/dri/renderD128 mode=$(stat -c %a /dev/dri/renderD128) driver=$drv"
	else
		echo "render-node="
	fi
	libdir=$(gl_libdir) && echo "gl-libdir=$libdir"
	;;
egl)
	# Debian's mesa-utils-bin names it per architecture (mesa-utils adds the
	# plain name).
	egl=$(command -v eglinfo || ls /usr/bin/eglinfo.* 2>/dev/null | head -n 1)
	[ -n "$egl" ] || die "eglinfo is not installed (package mesa-utils-bin)"
	out=$("$egl" -p gbm 2>&1)
	printf '%s\n' "$out" | sed -n 's/^EGL \(version string\|driver name\): */egl-\1=/p' | tr ' ' '-' | sed 's/^egl-version-string/egl-version/; s/^egl-driver-name/egl-driver/'
	case $out in
	*EGL_MESA_image_dma_buf_export*) echo "dmabuf-export=yes" ;;
	*) echo "dmabuf-export=no" ;;
	esac
	;;
libvirtd)
	command -v libvirtd >/dev/null || die "libvirtd is not installed on the node (image.profile: display installs libvirt-daemon-system)"
	command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 is not installed on the node (image.profile: display)"
	if ! virsh_ version >/dev/null 2>&1; then
		if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
			systemctl start virtlogd.socket libvirtd.socket libvirtd.service >/dev/null 2>&1
		fi
		if ! virsh_ version >/dev/null 2>&1; then
			virtlogd -d 2>/dev/null
			libvirtd -d || die "libvirtd -d failed"
		fi
		i=0
		while ! virsh_ version >/dev/null 2>&1 && [ $i -lt 60 ]; do
			sleep 0.5
			i=$((i + 1))
		done
	fi
	v=$(virsh_ version 2>&1) || die "libvirtd does not answer on $URI: $v"
	printf '%s\n' "$v" | sed -n 's/^Using library: libvirt /libvirt=/p; s/^Running hypervisor: QEMU /qemu=/p'
	;;
mdev-load)
	ko=$1
	for m in vfio vfio_iommu_type1 mdev; do
		modprobe "$m" || die "modprobe $m failed (the node kernel's vfio/mdev modules)"
	done
	if [ -d /sys/module/mbochs ]; then
		echo "mbochs=already-loaded"
	else
		out=$(insmod "$ko" 2>&1) || die "insmod $ko: $out"
		: >"$DIR/loaded-mbochs"
		echo "mbochs=loaded"
	fi
	echo "vermagic=$(modinfo -F vermagic "$ko" 2>/dev/null | tr ' ' '_')"
	;;
mdev-create)
	parent=$1 type=$2 uuid=$3
	base=/sys/class/mdev_bus/$parent/mdev_supported_types
	[ -d "$base" ] || die "no mdev parent '$parent' (ls /sys/class/mdev_bus: $(ls /sys/class/mdev_bus 2>/dev/null | tr '\n' ' '))"
	if [ -z "$type" ]; then
		for t in "$base"/*; do
			[ "$(cat "$t/available_instances" 2>/dev/null || echo 0)" -gt 0 ] || continue
			type=$(basename "$t")
			break
		done
		[ -n "$type" ] || die "parent $parent has no type with available instances"
	fi
	[ -d "$base/$type" ] || die "parent $parent has no type '$type' (types: $(ls "$base" | tr '\n' ' '))"
	printf '%s\n' "$uuid" >"$DIR/mdev"
	echo "$uuid" >"$base/$type/create" || die "creating $uuid of type $type failed"
	[ -d "/sys/bus/mdev/devices/$uuid" ] || die "/sys/bus/mdev/devices/$uuid did not appear"
	group=$(basename "$(readlink -f "/sys/bus/mdev/devices/$uuid/iommu_group")")
	echo "type=$type"
	echo "type-name=$(cat "$base/$type/name" 2>/dev/null | tr ' ' '_')"
	echo "device-api=$(cat "$base/$type/device_api" 2>/dev/null)"
	echo "vfio-group=/dev/vfio/$group"
	# The fake vGPU says which display this instance has.
	[ -f "/sys/bus/mdev/devices/$uuid/vgpuenv/display" ] &&
		echo "vgpu-display=$(cat "/sys/bus/mdev/devices/$uuid/vgpuenv/display")"
	[ -e "/dev/vfio/$group" ] || die "/dev/vfio/$group is missing for mdev $uuid"
	;;
hook)
	# As KubeVirt's sidecar-shim runs it: onDefineDomain --vmi JSON --domain XML,
	# the new domain on stdout.
	vmi=$1 in=$2 out=$3
	"$DIR/onDefineDomain" --vmi "$(cat "$vmi")" --domain "$(cat "$in")" >"$out" 2>"$DIR/hook.err" || {
		sed 's/^/hook: /' "$DIR/hook.err"
		die "onDefineDomain failed"
	}
	grep -o '<graphics type="egl-headless">.*</graphics>' "$out" | sed 's/^/hook-added=/'
	;;
start)
	start_domain "$1" "$2"
	;;
start-without-mesa)
	trap 'restore_mesa' EXIT
	trap 'exit 1' INT TERM HUP
	hide_mesa
	start_domain "$1" "$2"
	;;
start-without-render-node)
	trap 'restore_render_node' EXIT
	trap 'exit 1' INT TERM HUP
	hide_render_node
	start_domain "$1" "$2"
	;;
start-without-gl)
	# No GL at all: mesa's libraries unloadable and no render node, as in a
	# Kind container. QEMU keeps running after both come back.
	trap 'restore_mesa; restore_render_node' EXIT
	trap 'exit 1' INT TERM HUP
	hide_mesa
	hide_render_node
	start_domain "$1" "$2"
	;;
vgpu-display)
	# vgpu-display MODE: the display new instances of the fake vGPU get, for
	# this run; cleanup puts the previous one back.
	p=/sys/module/vgpuenv_t4/parameters/display
	[ -e "$p" ] || die "vgpuenv_t4 is not loaded"
	[ -f "$DIR/vgpu-display" ] || cat "$p" >"$DIR/vgpu-display"
	echo "$1" >"$p" || die "vgpuenv_t4 refused display mode '$1'"
	echo "previous-display=$(cat "$DIR/vgpu-display")"
	;;
plane-read)
	# plane-read UUID: the instance's plane read as QEMU gets it, into
	# $DIR/plane.ppm (build/vgpuenv-plane-read, uploaded next to this).
	"$DIR/plane-read" "$1" "$DIR/plane.ppm"
	;;
vgpu-loaded)
	# This run loaded the fake vGPU: the final cleanup removes it again.
	: >"$DIR/loaded-vgpu"
	;;
display)
	# display DOMAIN ALIAS [SCANOUT]: the vGPU's own console, addressed by
	# the hostdev's alias, through QMP (what `virsh screenshot` uses, but not
	# limited to screen 0, which is KubeVirt's VGA). Paused, nothing ran in
	# the guest yet: QEMU shows its placeholder. Running, the console must
	# follow the guest: wait until it shows the guest's output (the firmware
	# sets up ramfb and writes to it), up to 60 s on a loaded TCG host.
	# SCANOUT: the fake vGPU instance's vgpuenv/scanout attribute; once the
	# ramfb is seen, the plane is turned on there (what a guest driver does)
	# and the console must switch to the vGPU's own plane.
	name=$1 alias=$2 scanout=${3:-} file=/var/lib/libvirt/qemu/vgpuenv-display-$1
	log=/var/log/libvirt/qemu/$name.log
	before=0
	[ -f "$log" ] && before=$(wc -c <"$log")
	rm -f "$file".*.ppm
	dump() {
		virsh_ qemu-monitor-command "$name" \
			"{\"execute\":\"screendump\",\"arguments\":{\"filename\":\"$1\",\"device\":\"$alias\"}}" 2>&1
	}
	out=$(dump "$file.paused.ppm") || die "screendump failed: $out"
	[ -s "$file.paused.ppm" ] || die "screendump wrote no file: $out"
	echo "paused-size=$(head -c 20 "$file.paused.ppm" | sed -n 2p | tr ' ' 'x')"
	virsh_ resume "$name" >/dev/null || die "virsh resume $name failed"
	i=0
	changed=
	while [ $i -lt 60 ]; do
		sleep 1
		i=$((i + 1))
		out=$(dump "$file.running.ppm") || die "screendump failed: $out"
		cmp -s "$file.paused.ppm" "$file.running.ppm" && continue
		# The firmware sets the mode first and draws a moment later: an
		# all-black screen of the new size does not count yet.
		size=$(head -n 2 "$file.running.ppm" | tail -n 1)
		{
			head -n 3 "$file.running.ppm"
			head -c $((${size% *} * ${size#* } * 3)) /dev/zero
		} >"$file.black.ppm"
		if ! cmp -s "$file.black.ppm" "$file.running.ppm"; then
			changed=$i
			break
		fi
	done
	shot=$file.running.ppm
	if [ -n "$scanout" ] && [ -n "$changed" ]; then
		cp "$file.running.ppm" "$file.ramfb.ppm"
		echo "screendump-ramfb=$file.ramfb.ppm"
		counter=${scanout%/scanout}/dmabufs
		before_bufs=$(cat "$counter" 2>/dev/null)
		echo "dmabufs-before=$before_bufs"
		echo 1 >"$scanout" || die "cannot turn the plane on ($scanout)"
		# The console switches to the plane; a GL display that cannot
		# import the dma-buf has no surface to dump instead: that is
		# final once QEMU has taken the dma-buf.
		i=0
		plane=
		fails=0
		while [ $i -lt 30 ]; do
			sleep 1
			i=$((i + 1))
			if ! out=$(dump "$file.plane.ppm"); then
				echo "plane-error=$(printf '%s' "$out" | sed -n 's/.*"desc":"\([^"]*\)".*/\1/p')"
				fails=$((fails + 1))
				[ "$fails" -ge 3 ] && [ "$(cat "$counter" 2>/dev/null)" != "$before_bufs" ] && break
				continue
			fi
			cmp -s "$file.ramfb.ppm" "$file.plane.ppm" && continue
			plane=$i
			break
		done
		echo "plane-after=$plane"
		echo "dmabufs-after=$(cat "$counter" 2>/dev/null)"
		echo "scanout=$(cat "$scanout")"
		[ -n "$plane" ] && shot=$file.plane.ppm
	fi
	virsh_ suspend "$name" >/dev/null
	echo "changed-after=$changed"
	echo "screendump=$shot"
	opts=$(virsh_ qemu-monitor-command "$name" '{"execute":"query-display-options"}' 2>&1)
	echo "display-options=$opts"
	# What QEMU said meanwhile (a failed dmabuf import, for one).
	[ -f "$log" ] && tail -c +$((before + 1)) "$log" | grep -v '^[A-Z_]*=\|^/usr/bin/qemu\|^ *-' | sed 's/^/qemu-log: /'
	;;
stop)
	remove_domain "$1"
	;;
cleanup)
	# cleanup [DOMAIN...] [--mdev UUID] [--final]
	restore_mesa
	restore_render_node
	final=
	while [ $# -gt 0 ]; do
		case $1 in
		--mdev)
			if [ -e "/sys/bus/mdev/devices/$2/remove" ]; then
				echo 1 >"/sys/bus/mdev/devices/$2/remove" && echo "removed-mdev=$2"
			fi
			shift
			;;
		--final) final=1 ;;
		*) remove_domain "$1" ;;
		esac
		shift
	done
	# Stale instances of an earlier, killed run are named in its marker.
	if [ -f "$DIR/mdev" ]; then
		u=$(cat "$DIR/mdev")
		[ -e "/sys/bus/mdev/devices/$u/remove" ] && echo 1 >"/sys/bus/mdev/devices/$u/remove" && echo "removed-mdev=$u"
		rm -f "$DIR/mdev"
	fi
	if [ -f "$DIR/vgpu-display" ]; then
		p=/sys/module/vgpuenv_t4/parameters/display
		[ -e "$p" ] && cat "$DIR/vgpu-display" >"$p" && echo "restored-vgpu-display=$(cat "$p")"
		rm -f "$DIR/vgpu-display"
	fi
	if [ -n "$final" ]; then
		if [ -f "$DIR/loaded-mbochs" ] && [ -d /sys/module/mbochs ]; then
			rmmod mbochs 2>/dev/null && echo "unloaded=mbochs"
		fi
		if [ -f "$DIR/loaded-vgpu" ] && [ -d /sys/module/vgpuenv_t4 ]; then
			sh /usr/local/lib/vgpuenv/vgpu-node.sh remove >/dev/null && echo "unloaded=vgpuenv_t4"
		fi
		rm -f /var/lib/libvirt/qemu/vgpuenv-display-*.ppm
	fi
	echo "clean=yes"
	;;
*)
	die "unknown verb '$verb'"
	;;
esac
