#!/usr/bin/env bash
# The launcher recipe (images/launcher/Containerfile, launcher-gl.sh) as far
# as this machine allows: quay.io and CentOS mirrors are out of reach, so
# the build runs with podman, offline, from local images:
#   - the stock launcher is a stand-in (tests/fixtures/launcher/
#     Containerfile.stock, after KubeVirt's hack/rpm-deps.sh: QEMU without UI
#     modules, no mesa, no package manager) built from an mmdebstrap base;
#   - the builder is that base (the launcher's release, with dpkg), so the
#     recipe takes its Debian path; its dnf path (CentOS Stream, the real
#     launcher) runs against a dnf stand-in (tests/standins/dnf) on this host.
# Checked: the stock stand-in's QEMU lists no egl-headless (control); the
# recipe's image lists it, QEMU's egl-headless display gets as far as
# looking for a render node, and only GL files were added (the launcher's
# own QEMU and libc are byte for byte the same, no package manager came
# back); a builder of another release or another QEMU build is refused; the
# dnf command line names exactly the launcher's qemu-kvm build.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/oci.sh"
cd "$(dirname "$0")/../.."
oci_need
T=$(mktemp -d /tmp/launcher-image.XXXXXX)
STOCK=localhost/vgpuenv-test/virt-launcher:stock-$$
GL=localhost/vgpuenv-test/virt-launcher-gl:test-$$
cleanup() {
	local d
	for d in "$T"/run-*; do umount "$d/rootfs" 2>/dev/null || true; done
	oci_podman image unmount "$STOCK" "$GL" >/dev/null 2>&1 || true
	oci_podman rmi "$GL" "$STOCK" >/dev/null 2>&1 || true
	rm -rf "$T"
}
trap cleanup EXIT

# ---- the recipe's shell steps on this host: refusals and the dnf path ----------------------
S=images/launcher/launcher-gl.sh
mkdir -p "$T/facts-deb"
qemu-system-x86_64 --version >"$T/facts-deb/qemu-version"
cp /etc/os-release "$T/facts-deb/os-release"
echo /usr/bin/qemu-system-x86_64 >"$T/facts-deb/files"
printf 'ID=debian\nVERSION_ID="11"\n' >"$T/os11"
rc=0
LAUNCHER_GL_OS_RELEASE=$T/os11 sh "$S" install "$T/facts-deb" "$T/out" 2>"$T/err" || rc=$?
[ $rc -eq 1 ] && has "$T/err" "the launcher is debian 12, this builder debian 11" || fail "another release: rc=$rc $(cat "$T/err")"
sed -i '1s/(Debian [^)]*)/(Debian 1:7.2+dfsg-7+deb12u99)/' "$T/facts-deb/qemu-version"
rc=0
sh "$S" install "$T/facts-deb" "$T/out" 2>"$T/err" || rc=$?
[ $rc -eq 1 ] && has "$T/err" "the launcher's QEMU is 1:7.2+dfsg-7+deb12u99" || fail "another QEMU build: rc=$rc $(cat "$T/err")"
[ ! -e "$T/out" ] || [ -z "$(ls -A "$T/out")" ] || fail "a refused install left files in $T/out"
ok "refused before anything is installed: a builder of another release, a builder whose QEMU is another build"

mkdir -p "$T/facts-rhel"
echo 'QEMU emulator version 10.1.0 (qemu-kvm-10.1.0-20.el9)' >"$T/facts-rhel/qemu-version"
printf 'NAME="CentOS Stream"\nID="centos"\nVERSION_ID="9"\n' >"$T/facts-rhel/os-release"
printf '/usr/lib64/libc.so.6\n/usr/libexec/qemu-kvm\n' >"$T/facts-rhel/files"
export STANDIN_LOG=$T/standin.log
PATH=$PWD/tests/standins:$PATH LAUNCHER_GL_OS_RELEASE=$T/facts-rhel/os-release DNF_OPTS=--nogpgcheck \
	sh "$S" install "$T/facts-rhel" "$T/gl-rhel" >"$T/rhel.out" 2>&1 || fail "dnf path: $(cat "$T/rhel.out")"
argv=$(tr '\0' ' ' <"$STANDIN_LOG.d/000-dnf/argv")
want="dnf -y --installroot=$T/gl-rhel.stage --releasever=9 --setopt=reposdir=/etc/yum.repos.d --setopt=install_weak_deps=False --setopt=tsflags=nodocs --nogpgcheck install qemu-kvm-ui-egl-headless-10.1.0-20.el9 qemu-kvm-ui-opengl-10.1.0-20.el9 mesa-dri-drivers mesa-libEGL mesa-libgbm "
[ "$argv" = "$want" ] || fail "dnf argv: $argv"
files=$(cat "$T/gl-rhel/usr/share/vgpuenv/launcher-gl.files")
for f in /usr/lib64/qemu-kvm/ui-egl-headless.so /usr/lib64/qemu-kvm/ui-opengl.so /usr/lib64/libgbm.so.1 \
	/usr/lib64/libgbm.so /usr/lib64/libEGL_mesa.so.0 /usr/lib64/dri/swrast_dri.so /usr/share/glvnd/egl_vendor.d/50_mesa.json; do
	[[ $'\n'$files$'\n' == *$'\n'$f$'\n'* ]] && [ -e "$T/gl-rhel$f" ] || fail "dnf path: $f not added: $files"
done
for f in /usr/lib64/libc.so.6 /usr/libexec/qemu-kvm /var/lib/rpm/rpmdb.sqlite /usr/share/doc/mesa-libEGL/README; do
	[ ! -e "$T/gl-rhel$f" ] || fail "dnf path: $f must not be copied over the launcher"
done
has "$T/gl-rhel/usr/share/vgpuenv/launcher-gl.txt" "qemu: qemu-kvm-10.1.0-20.el9" || fail "launcher-gl.txt"
rc=0
PATH=$PWD/tests/standins:$PATH LAUNCHER_GL_OS_RELEASE=$T/facts-rhel/os-release STANDIN_DNF_VR=10.1.0-21.el9 \
	sh "$S" install "$T/facts-rhel" "$T/gl-rhel2" >"$T/rhel2.out" 2>&1 || rc=$?
[ $rc -eq 1 ] && has "$T/rhel2.out" "No match for argument" && has "$T/rhel2.out" "DNF_OPTS" ||
	fail "dnf path, build not in the repository: rc=$rc $(cat "$T/rhel2.out")"
unset STANDIN_LOG
ok "dnf path (stand-in dnf): exactly qemu-kvm-ui-egl-headless/-opengl of the launcher's build 10.1.0-20.el9 + mesa, release 9; only what the launcher lacks is kept (no libc, rpmdb, docs); a build the mirror lacks fails naming DNF_OPTS"

# ---- the recipe with podman, offline -------------------------------------------------------
t0=$(date +%s)
BASE=$(oci_debian_base launcher tests/fixtures/launcher/packages)
oci_podman build --layers=false --pull=never --network=none --build-arg BASE="$BASE" \
	-f tests/fixtures/launcher/Containerfile.stock -t "$STOCK" . >"$T/stock.log" 2>&1 ||
	{ tail -20 "$T/stock.log"; fail "building the stock stand-in"; }
t1=$(date +%s)
# qemu_display IMAGE: what `-display help` lists, and what starting QEMU
# with -display egl-headless says (no render node exists in the container).
qemu_display() {
	local d=$T/run-$1
	oci_bundle_run "$2" "$d" --uid 0 -- /bin/sh -c \
		'qemu-system-x86_64 -display help 2>/dev/null; echo ---; timeout 20 qemu-system-x86_64 -machine none -nodefaults -S -monitor none -serial none -display egl-headless 2>&1; echo "rc=$?"' \
		>"$T/$1.qemu" 2>&1 || true
}
qemu_display stock "$STOCK"
sed -n '/^---$/q;p' "$T/stock.qemu" | grep -qx egl-headless && fail "the stock stand-in lists egl-headless: $(cat "$T/stock.qemu")"
grep -q 'rc=0' "$T/stock.qemu" && fail "the stock stand-in's QEMU ran egl-headless"
ok "control: the stock launcher stand-in's QEMU has no egl-headless ($(sed -n '/^---$/,$p' "$T/stock.qemu" | grep -m1 -i 'egl\|display' || true))"

oci_podman build --layers=false --pull=never --network=none --build-arg LAUNCHER_IMAGE="$STOCK" \
	--build-arg GL_BUILDER_IMAGE="$BASE" -f images/launcher/Containerfile -t "$GL" . >"$T/gl.log" 2>&1 ||
	{ tail -30 "$T/gl.log"; fail "podman build of images/launcher/Containerfile failed"; }
t2=$(date +%s)
grep -q 'launcher-gl: .* lists egl-headless; [0-9]* added libraries resolve' "$T/gl.log" ||
	fail "the recipe's verify step did not run: $(tail -20 "$T/gl.log")"
ok "podman build of the recipe (offline): base + stand-in $((t1 - t0)) s, recipe $((t2 - t1)) s; $(grep -o 'launcher-gl: .* resolve' "$T/gl.log")"

qemu_display gl "$GL"
sed -n '/^---$/q;p' "$T/gl.qemu" | grep -qx egl-headless || fail "the recipe's QEMU lists no egl-headless: $(cat "$T/gl.qemu")"
grep -q 'egl: no drm render node available' "$T/gl.qemu" ||
	fail "egl-headless did not get as far as the render node: $(cat "$T/gl.qemu")"
ok "the recipe's QEMU lists egl-headless, and -display egl-headless initializes EGL up to 'no drm render node available' (none in the container)"

s=$(oci_podman image mount "$STOCK")
g=$(oci_podman image mount "$GL")
for f in /usr/bin/qemu-system-x86_64 /usr/lib/x86_64-linux-gnu/libc.so.6 /usr/lib/x86_64-linux-gnu/libglib-2.0.so.0; do
	cmp -s "$s$f" "$g$f" || fail "$f differs between the stock launcher and the recipe's"
done
for f in /usr/bin/dpkg /usr/bin/apt-get /var/lib/dpkg/status; do
	[ ! -e "$g$f" ] || fail "the recipe brought $f into the launcher"
done
added=$g/usr/share/vgpuenv/launcher-gl.files
for f in /usr/lib/x86_64-linux-gnu/qemu/ui-egl-headless.so /usr/lib/x86_64-linux-gnu/qemu/ui-opengl.so \
	/usr/lib/x86_64-linux-gnu/libgbm.so.1 /usr/lib/x86_64-linux-gnu/libEGL_mesa.so.0 /usr/lib/x86_64-linux-gnu/libepoxy.so.0; do
	grep -qx "$f" "$added" || fail "$f not among the added files"
done
grep -q '^/usr/lib/x86_64-linux-gnu/dri/.*_dri.so$' "$added" || fail "no DRI driver added"
grep -qx '/usr/lib/x86_64-linux-gnu/libc.so.6' "$added" && fail "libc among the added files"
[ "$(oci_podman image inspect "$GL" --format '{{index .Config.Labels "io.vgpuenv.launcher-gl"}}')" = egl-headless ] ||
	fail "label io.vgpuenv.launcher-gl"
ok "only GL files added ($(wc -l <"$added"): UI modules, mesa, DRI drivers, libepoxy); the launcher's QEMU, libc and glib byte for byte the same; no dpkg/apt"
