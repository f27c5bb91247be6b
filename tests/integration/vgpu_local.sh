#!/usr/bin/env bash
# The fake NVIDIA T4 vGPU (provision/vgpu/) on a real node of the local
# provider, checked the way KubeVirt's MediatedDevices suite checks a node.
# The shell snippets below are the suite's own, from
# kubevirt/kubevirt d923fdb tests/mdev_configuration_allocation_test.go
# (getNumOfInstancesOnNodeByMdevType, checkAllMDEVCreated,
# checkAllMDEVRemoved, the generic spec's find/unbind/bind), run on the node
# as the suite runs them in a pod; mdevs are created the way virt-handler
# does (pkg/virt-handler/device-manager/mediated_devices_types.go
# createMdevTypes: available_instances UUIDs written into <type>/create).
#
#   - `vgpuenv up` loads the module (vgpu: dmabuf, the local default) and
#     reports it in the verdict table; a second `up` changes nothing;
#   - names, the max_instance sum, every available instance created and
#     counted by mdev_type, one type per card, all removed again;
#   - the generic spec: the PCI parent's 00.0 unbound (the parent vanishes)
#     and bound again (it comes back);
#   - a domain on an instance: QEMU's `info pci` shows 10de:1eb8;
#   - unloading with that instance in use: refused, node unchanged;
#   - a type that does not exist (verify-display --mdev-type): a clear
#     message, node unchanged;
#   - the Kind path: build/vgpuenv itself inside the node, playing the Kind
#     host (`vgpuenv vgpu load --host`, region by Kind's default), and a
#     kernel without headers there: a clear message, nothing loaded.
# The module is loaded only inside the node, never into this machine's kernel.
. "$(dirname "$0")/../lib/vm.sh"
cd "$ROOT"
[ -x build/vgpuenv ] || skip "build/vgpuenv not built (run make)"
need_root_and_libvirt
command -v python3 >/dev/null || skip "python3 missing (make deps)"

. tests/lib/steps.sh
steps_start 50

# The display image carries libvirt and QEMU for the nested domain; it is
# the one display_chain.sh uses (the image cache is shared).
NODE_MEMORY=2048 SSH_TIMEOUT=600 write_config vgpu-local 176 \
	"image: {base: debian-bookworm, family: debian, profile: display}"
V=build/vgpuenv
NODE=vgpu-local-node1
on() { "$V" ssh -c "$CFG" "$NODE" -- "$@"; }
# put LOCAL REMOTE [MODE]: a file onto the node. `vgpuenv ssh CMD` does not
# forward stdin, its shell does: the first line execs the decoder, which
# reads the rest of the stream itself (the shell reads no further).
put() {
	{
		echo "mkdir -p \"\$(dirname '$2')\" && exec sh -c 'base64 -d | gunzip >\"\$0\" && chmod ${3:-644} \"\$0\"' '$2'"
		gzip -c "$1" | base64
	} | "$V" ssh -c "$CFG" "$NODE" >/dev/null || fail "cannot copy $1 to the node"
}

rc=0
"$V" up -c "$CFG" >"$TMP/up1.out" 2>&1 || rc=$?
step "up (first)"
sed -n '/NODE  *CHECK/,$p' "$TMP/up1.out"
[ $rc -eq 0 ] || { tail -n 40 "$TMP/up1.out"; fail "vgpuenv up failed (exit $rc)"; }
grep -Eq "^$NODE +vgpu +ok +vgpuenv_t4, display dmabuf: 0000:[0-9a-f]{2}:00\.0: nvidia-222 \"GRID T4-1B\" 16 available nvidia-223 \"GRID T4-2B\" 8 available$" "$TMP/up1.out" ||
	fail "no vgpu row with both types in the verdict table"
on test -d /sys/module/vgpuenv_t4 || fail "vgpuenv_t4 is not loaded on the node"
[ "$(on cat /sys/module/vgpuenv_t4/parameters/display)" = dmabuf ] || fail "display is not dmabuf"
ok "up: vgpu row ok, module loaded with display dmabuf"

# --- loading twice: nothing changes ------------------------------------------
before=$(on stat -c '%n %Y %i' /etc/modprobe.d/vgpuenv-vgpu.conf /usr/local/lib/vgpuenv/vgpu-node.sh \
	"/lib/modules/$(on uname -r)/updates/vgpuenv/vgpuenv_t4.ko") || fail "stat"
"$V" up -c "$CFG" >"$TMP/up2.out" 2>&1 || { tail -n 30 "$TMP/up2.out"; fail "second up failed"; }
step "up (second)"
after=$(on stat -c '%n %Y %i' /etc/modprobe.d/vgpuenv-vgpu.conf /usr/local/lib/vgpuenv/vgpu-node.sh \
	"/lib/modules/$(on uname -r)/updates/vgpuenv/vgpuenv_t4.ko")
[ "$before" = "$after" ] || fail "the second up rewrote files: $before / $after"
grep -Eq "loaded vgpuenv_t4|installed /lib/modules|apt-get download" "$TMP/up2.out" &&
	fail "the second up rebuilt, reinstalled or reloaded: $(grep -E 'vgpuenv_t4|apt-get' "$TMP/up2.out")"
grep -Eq "^$NODE +vgpu +ok " "$TMP/up2.out" || fail "second up: no vgpu ok row"
"$V" vgpu load -c "$CFG" >"$TMP/load.out" 2>&1 || { cat "$TMP/load.out"; fail "vgpuenv vgpu load"; }
grep -q "changed\|loaded vgpuenv_t4" "$TMP/load.out" && fail "vgpu load on a loaded node changed something"
ok "loading twice (second up, vgpuenv vgpu load): no rebuild, no write, no reload"

# --- what the suite reads ------------------------------------------------------
# getNumOfInstancesOnNodeByMdevType, verbatim but for the Sprintf arguments.
num_instances() {
	on bash -c "num=0
	for dev in /sys/class/mdev_bus/*/mdev_supported_types/$1; do
	  ins=\$(/usr/bin/grep -m1 -oPs '\\bmax_instance=\\K\\d+\\b' \${dev}/description)
	  if [[ -n \$ins ]]; then
	    ((num+=\$ins))
	  fi
	done
	echo \$num"
}
# checkAllMDEVCreated (its loop exits after the first mdev, as upstream's does).
all_created() {
	on bash -c "files_num=\$(ls -A /sys/bus/mdev/devices/| wc -l)
		if [[ \$files_num != $2 ]] ; then
		  echo \"failed, not enough mdevs of type $1 has been created\"
		  exit 1
		fi
		for x in \$(ls -A /sys/bus/mdev/devices/); do
		  type_name=\$(basename \"\$(readlink -f /sys/bus/mdev/devices/\$x/mdev_type)\")
		  if [[ \"\$type_name\" != \"$1\" ]]; then
		     echo \"failed, not all mdevs of type $1\"
		     exit 1
		  fi
		  exit 0
		done"
}
all_removed() {
	on bash -c 'files_num=$(ls -A /sys/bus/mdev/devices/| wc -l)
		if [[ $files_num != 0 ]] ; then
		  echo "failed, not all mdevs removed"
		  exit 1
		fi
	        exit 0'
}
# virt-handler's createMdevTypes: as many UUIDs as available_instances says.
create_all() {
	on bash -c "set -e; t=\$(ls -d /sys/class/mdev_bus/*/mdev_supported_types/$1 | head -1)
		n=\$(cat \$t/available_instances)
		for i in \$(seq \$n); do cat /proc/sys/kernel/random/uuid >\$t/create; done
		echo \$n"
}
# virt-handler's removeMDEVType for every mdev.
remove_all() {
	on sh -c 'for d in /sys/bus/mdev/devices/*; do [ -e "$d" ] && echo 1 >"$d/remove"; done; true'
}

[ "$(num_instances nvidia-222)" = 16 ] || fail "max_instance sum of nvidia-222 is '$(num_instances nvidia-222)', not 16"
[ "$(num_instances nvidia-223)" = 8 ] || fail "max_instance sum of nvidia-223 is not 8"
parent=$(on sh -c 'ls -df1 /sys/class/mdev_bus/0000* | head -1') || fail "no PCI parent"
pci=$(basename "$parent")
[ "$(on cat "$parent/mdev_supported_types/nvidia-222/name")" = "GRID T4-1B" ] || fail "nvidia-222 name"
[ "$(on cat "$parent/mdev_supported_types/nvidia-223/name")" = "GRID T4-2B" ] || fail "nvidia-223 name"
[ "$(on cat "$parent/mdev_supported_types/nvidia-222/device_api")" = vfio-pci ] || fail "device_api"
ok "names GRID T4-1B / GRID T4-2B, max_instance sums 16 and 8 on parent $pci"

[ "$(create_all nvidia-222)" = 16 ] || fail "virt-handler's loop did not create 16 nvidia-222"
all_created nvidia-222 16 >/dev/null || fail "checkAllMDEVCreated(nvidia-222, 16): $(all_created nvidia-222 16)"
[ "$(on cat "$parent/mdev_supported_types/nvidia-222/available_instances")" = 0 ] || fail "nvidia-222 still has room"
[ "$(on cat "$parent/mdev_supported_types/nvidia-223/available_instances")" = 0 ] ||
	fail "nvidia-223 has room while nvidia-222 instances exist (one type per T4)"
on sh -c "cat /proc/sys/kernel/random/uuid > $parent/mdev_supported_types/nvidia-223/create" 2>"$TMP/mixed.err" &&
	fail "an nvidia-223 instance was created next to nvidia-222 ones"
remove_all
all_removed >/dev/null || fail "checkAllMDEVRemoved"
[ "$(on cat "$parent/mdev_supported_types/nvidia-223/available_instances")" = 8 ] || fail "nvidia-223 not free again"
[ "$(create_all nvidia-223)" = 8 ] || fail "8 nvidia-223"
all_created nvidia-223 8 >/dev/null || fail "checkAllMDEVCreated(nvidia-223, 8)"
remove_all
all_removed >/dev/null || fail "checkAllMDEVRemoved after nvidia-223"
step "the suite's sysfs checks"
ok "16 nvidia-222 then 8 nvidia-223 created as virt-handler does, counted by mdev_type, removed"

# --- the generic spec: unbind and bind the parent's 00.0 ----------------------
driver=$(on readlink -e "/sys/class/mdev_bus/$pci/driver") || fail "readlink driver"
case $driver in /sys/bus/pci/drivers/nvidia) ;; *) fail "parent driver is $driver" ;; esac
[ "$(on readlink -f "$driver/module")" = /sys/module/vgpuenv_t4 ] || fail "the nvidia driver is not vgpuenv_t4's"
root=$(printf "'%s'" "$pci" | sed -E "s/[0-9a-f]{2}\.[0-9a-f]'\$/00.0'/")
[ "$root" = "'$pci'" ] || fail "the parent $pci is not function 00.0 of its bus (the spec would unbind $root)"
on bash -c "echo $root > $driver/unbind" || fail "unbind"
on test ! -e "/sys/class/mdev_bus/$pci" || fail "the parent is still there after unbinding"
on bash -c "echo $root > $driver/bind" || fail "bind"
for _ in $(seq 20); do on test -e "/sys/class/mdev_bus/$pci/mdev_supported_types/nvidia-222" && break; sleep 0.5; done
on test -e "/sys/class/mdev_bus/$pci/mdev_supported_types/nvidia-222" || fail "the parent did not come back"
ok "generic spec: $root unbound from $(basename "$driver") (parent gone) and bound again (back)"

# --- a domain on an instance: the guest's PCI device is 10de:1eb8 --------------
uuid=$(cat /proc/sys/kernel/random/uuid)
on sh -c "echo $uuid > /sys/class/mdev_bus/$pci/mdev_supported_types/nvidia-222/create" || fail "create"
# An instance holds the module: a bare rmmod cannot take it from under
# virt-handler either.
on rmmod vgpuenv_t4 2>/dev/null && fail "rmmod went through with an instance"
on test -e "/sys/bus/mdev/devices/$uuid" || fail "rmmod removed the instance"
on sh -c 'systemctl start virtlogd.socket libvirtd.socket libvirtd.service >/dev/null 2>&1 || true
	for i in $(seq 60); do virsh -q -c qemu:///system version >/dev/null 2>&1 && exit 0; sleep 0.5; done; exit 1' ||
	fail "libvirtd does not start on the node"
# KubeVirt's hostdev shape (managed=no, model vfio-pci), display off: the
# display is verify-display's business; this is about the device.
cat >"$TMP/dom.xml" <<XML
<domain type="qemu">
  <name>vgpu-local-guest</name>
  <memory unit="MiB">128</memory>
  <os><type arch="x86_64" machine="q35">hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type="usb" model="none"/>
    <graphics type="vnc" autoport="yes"><listen type="address" address="127.0.0.1"/></graphics>
    <hostdev mode="subsystem" type="mdev" managed="no" model="vfio-pci" display="off">
      <source><address uuid="$uuid"/></source>
    </hostdev>
    <memballoon model="none"/>
  </devices>
</domain>
XML
put "$TMP/dom.xml" /root/vgpu-guest.xml
on virsh -q -c qemu:///system define /root/vgpu-guest.xml >/dev/null || fail "define"
on virsh -q -c qemu:///system start --paused vgpu-local-guest >"$TMP/start.out" 2>&1 ||
	{ cat "$TMP/start.out"; fail "the domain on instance $uuid did not start"; }
# Behind its PCIe root port the device gets a bus number once the guest's
# firmware has enumerated the bus: let it run that far.
on virsh -q -c qemu:///system resume vgpu-local-guest >/dev/null || fail "resume"
for _ in $(seq 60); do
	on virsh -q -c qemu:///system qemu-monitor-command --hmp vgpu-local-guest 'info pci' >"$TMP/infopci.out" ||
		fail "info pci"
	grep -q "PCI device 10de:1eb8" "$TMP/infopci.out" && break
	sleep 1
done
on virsh -q -c qemu:///system suspend vgpu-local-guest >/dev/null
grep -q "PCI device 10de:1eb8" "$TMP/infopci.out" || { cat "$TMP/infopci.out"; fail "no 10de:1eb8 in the guest"; }
grep -A1 "10de:1eb8" "$TMP/infopci.out" | grep -q "PCI subsystem 10de:12a2" || fail "subsystem is not 10de:12a2"
step "domain on an instance"
ok "the guest's PCI bus has '$(grep -m1 "PCI device 10de:1eb8" "$TMP/infopci.out" | sed 's/^ *//')' (QEMU info pci)"

# --- unloading with the instance in use: refused, nothing changed --------------
"$V" vgpu unload -c "$CFG" >"$TMP/unload.out" 2>&1 && fail "unload succeeded with an instance in use"
grep -q "1 mdev instance(s) of vgpuenv_t4 exist ($uuid ): remove them first" "$TMP/unload.out" ||
	fail "unload message: $(cat "$TMP/unload.out")"
on test -d /sys/module/vgpuenv_t4 || fail "the module went away"
on test -e "/sys/bus/mdev/devices/$uuid" || fail "the instance went away"
[ "$(on virsh -q -c qemu:///system domstate vgpu-local-guest)" = paused ] || fail "the domain was disturbed"
on rmmod vgpuenv_t4 2>"$TMP/rmmod.err" && fail "the kernel let rmmod through while QEMU holds the device"
ok "unload refused: $(grep -o 'error:.*' "$TMP/unload.out" | head -c 90)...; module, instance, domain untouched"
on virsh -q -c qemu:///system destroy vgpu-local-guest >/dev/null
on virsh -q -c qemu:///system undefine vgpu-local-guest >/dev/null
on sh -c "echo 1 > /sys/bus/mdev/devices/$uuid/remove" || fail "remove the instance"

# --- a type that does not exist ---------------------------------------------
rc=0
"$V" verify-display -c "$CFG" --mdev-type nvidia-999 --json >"$TMP/nt.json" 2>"$TMP/nt.err" || rc=$?
[ $rc -eq 1 ] || fail "verify-display with an unknown type must exit 1"
python3 - "$TMP/nt.json" "$pci" <<'PY' || fail "unknown type"
import json, sys
r = json.load(open(sys.argv[1]))
c = {x["id"]: x for x in r["checks"]}
want = f"parent {sys.argv[2]} has no type 'nvidia-999' (types: nvidia-222 nvidia-223 )"
assert c["mdev"]["result"] == "fail" and want in c["mdev"]["observed"], c["mdev"]
print("ok   unknown type: " + c["mdev"]["observed"])
PY
[ -z "$(on ls /sys/bus/mdev/devices)" ] || fail "an instance was left"
[ "$(on cat /sys/module/vgpuenv_t4/parameters/display)" = dmabuf ] || fail "the display mode was not put back"
step "unknown type"

# --- the Kind host, played by the node ---------------------------------------
# build/vgpuenv runs in the node with its libraries (same Debian release),
# and the module cache entry this host built for the node's kernel.
kver=$(on uname -r)
for lib in $(ldd build/vgpuenv | awk '$3 ~ /^\// {print $3}'); do
	on test -e "$lib" || put "$lib" "/opt/vgpuenv/lib/$(basename "$lib")"
done
put build/vgpuenv /opt/vgpuenv/vgpuenv 755
cache=${VGPUENV_CACHE_DIR:-/var/cache/vgpuenv}/vgpu/$kver
[ -f "$cache/vgpuenv_t4.ko" ] || fail "no cached module in $cache"
put "$cache/vgpuenv_t4.ko" "/opt/vgpuenv/cache/vgpu/$kver/vgpuenv_t4.ko"
put "$cache/version" "/opt/vgpuenv/cache/vgpu/$kver/version"
printf 'name: vgpu-kind\nprovider: kind\nkind: {dir: /opt/vgpuenv}\n' >"$TMP/kind.yaml"
put "$TMP/kind.yaml" /opt/vgpuenv/kind.yaml
# Start from a host without the module (as a Kind host is).
"$V" vgpu unload -c "$CFG" >/dev/null 2>&1 || fail "unload before the Kind part"
on sh -c 'sh /usr/local/lib/vgpuenv/vgpu-node.sh remove >/dev/null' || fail "remove before the Kind part"
in_node() {
	on env -u VGPUENV_NO_HOST_KERNEL LD_LIBRARY_PATH=/opt/vgpuenv/lib VGPUENV_CACHE_DIR=/opt/vgpuenv/cache \
		VGPUENV_STATE_DIR=/opt/vgpuenv/state "$@"
}
# A kernel without headers: not from a Debian package (dpkg's database,
# bind-mounted over with a copy that lacks the kernel's package, knows
# nothing of it) and no /lib/modules/KVER/build.
on sh -c "awk -v p=linux-image-$kver 'BEGIN{RS=\"\"; ORS=\"\\n\\n\"} \$2 != p' /var/lib/dpkg/status >/opt/vgpuenv/status &&
	mount --bind /opt/vgpuenv/status /var/lib/dpkg/status" || fail "hiding the kernel's package"
[ -z "$(on dpkg-query -W -f '${Version}' "linux-image-$kver" 2>/dev/null)" ] || fail "dpkg still knows the kernel's package"
rc=0
in_node /opt/vgpuenv/vgpuenv vgpu load --host -c /opt/vgpuenv/kind.yaml >"$TMP/nohdr.out" 2>&1 || rc=$?
on umount /var/lib/dpkg/status || fail "umount"
[ $rc -ne 0 ] || fail "the load succeeded on a kernel without headers: $(cat "$TMP/nohdr.out")"
grep -q "cannot build vgpuenv_t4 for kernel $kver: the kernel is not from a Debian package this host can fetch; the node has no kernel headers (/lib/modules/KVER/build): for a RHEL-family node install kernel-devel-$kver, gcc and make (dnf install), or set vgpu: none" "$TMP/nohdr.out" ||
	fail "no clear message for a kernel without headers: $(cat "$TMP/nohdr.out")"
on test ! -d /sys/module/vgpuenv_t4 || fail "something was loaded anyway"
on test ! -e /etc/modprobe.d/vgpuenv-vgpu.conf || fail "a modprobe.d file was written anyway"
ok "kernel without headers: clear message, nothing loaded or written"

in_node /opt/vgpuenv/vgpuenv vgpu load --host -c /opt/vgpuenv/kind.yaml >"$TMP/kind.out" 2>&1 ||
	{ cat "$TMP/kind.out"; fail "vgpuenv vgpu load --host in the node"; }
grep -q "vgpuenv_t4: cached /opt/vgpuenv/cache/vgpu/$kver/vgpuenv_t4.ko" "$TMP/kind.out" || fail "the cached module was not used"
grep -Eq "^host +vgpu +ok +vgpuenv_t4, display region: 0000:" "$TMP/kind.out" || fail "no region row: $(cat "$TMP/kind.out")"
[ "$(on cat /sys/module/vgpuenv_t4/parameters/display)" = region ] || fail "Kind's default is not region"
# Without a pci-testdev (a real Kind host) the module gives a virtual parent.
on sh -c 'sh /usr/local/lib/vgpuenv/vgpu-node.sh unload >/dev/null && modprobe vgpuenv_t4 virtual_parents=1' || fail "virtual parent"
[ "$(on cat /sys/class/mdev_bus/nvidia/mdev_supported_types/nvidia-222/name)" = "GRID T4-1B" ] ||
	fail "no virtual parent nvidia"
on rmmod vgpuenv_t4 || fail "rmmod"
step "the Kind host in the node"
ok "Kind host: region by default from the cache, and a virtual parent without a pci-testdev"
echo PASS
