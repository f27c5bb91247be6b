#!/bin/sh
# The steps of images/launcher/Containerfile (read its comment first).
#
#   launcher-gl.sh facts DIR          in the launcher: its QEMU build, release
#                                     and file list into DIR
#   launcher-gl.sh install FACTS ROOT in a builder of the launcher's release:
#                                     the GL display modules of exactly that
#                                     QEMU build and mesa into ROOT, minus
#                                     every file the launcher has
#   launcher-gl.sh verify             in the result: its QEMU lists
#                                     egl-headless, the added libraries resolve
#
# POSIX sh. facts and verify use only what KubeVirt's launcher has (a shell,
# coreutils, findutils, its QEMU and the dynamic loader); install uses the
# builder's package manager: dnf (CentOS Stream, the real launcher) or
# apt/dpkg (a Debian launcher; the offline test's stand-in). Environment for
# tests: LAUNCHER_GL_OS_RELEASE (the builder's os-release file).
set -eu

die() {
	printf 'launcher-gl: %s\n' "$*" >&2
	exit 1
}

# Where KubeVirt's launcher has QEMU (RHEL's binary), then other builds'.
find_qemu() {
	for q in /usr/libexec/qemu-kvm /usr/bin/qemu-kvm /usr/bin/qemu-system-x86_64; do
		if [ -x "$q" ]; then
			printf '%s\n' "$q"
			return 0
		fi
	done
	return 1
}

facts() {
	out=$1
	mkdir -p "$out"
	q=$(find_qemu) || die "no QEMU in this image (looked for /usr/libexec/qemu-kvm): not a virt-launcher?"
	"$q" --version >"$out/qemu-version" || die "$q --version failed"
	printf '%s\n' "$q" >"$out/qemu-binary"
	cp /etc/os-release "$out/os-release"
	# Real paths only (find does not follow the /lib64 -> usr/lib64 links),
	# as the builder's files are compared below.
	find / -xdev \( -type f -o -type l \) ! -path "$out/*" ! -path '/vgpuenv/*' >"$out/files"
}

# The package the launcher's QEMU was built as, from the first line of
# `qemu --version`: "QEMU emulator version 10.1.0 (qemu-kvm-10.1.0-20.el9)"
# (qemu-kvm.spec --with-pkgversion=%{name}-%{version}-%{release}) or, on
# Debian, "... (Debian 1:7.2+dfsg-7+deb12u18+b3)".
qemu_package() {
	line=$(sed -n 1p "$1/qemu-version")
	case $line in
	*\(*\)*) ;;
	*) die "the launcher's QEMU names no package build: $line" ;;
	esac
	p=${line#*\(}
	printf '%s\n' "${p%\)*}"
}

os_field() { # FILE KEY
	(
		# shellcheck disable=SC1090 # os-release is shell syntax
		. "$1"
		eval "printf '%s\n' \"\${$2:-}\""
	)
}

install_dnf() { # FACTS STAGE
	pkg=$(qemu_package "$1")
	case $pkg in
	qemu-kvm-*) vr=${pkg#qemu-kvm-} ;;
	*) die "the launcher's QEMU is '$pkg', not a qemu-kvm build: no qemu-kvm-ui-* package matches it" ;;
	esac
	rel=$(os_field "$1/os-release" VERSION_ID)
	# shellcheck disable=SC2086 # DNF_OPTS is a list of options
	dnf -y --installroot="$2" --releasever="$rel" --setopt=reposdir=/etc/yum.repos.d \
		--setopt=install_weak_deps=False --setopt=tsflags=nodocs ${DNF_OPTS:-} install \
		"qemu-kvm-ui-egl-headless-$vr" "qemu-kvm-ui-opengl-$vr" \
		mesa-dri-drivers mesa-libEGL mesa-libgbm ||
		die "dnf could not install qemu-kvm-ui-egl-headless-$vr and qemu-kvm-ui-opengl-$vr (the launcher's QEMU build) for release $rel: when the mirror no longer has that build, pass --build-arg DNF_OPTS=--repofrompath=...,URL"
}

# The installed packages NAMES... depend on, recursively (first alternative
# of each dependency), for the Debian builder.
deb_closure() {
	todo="$*" seen=" "
	while [ -n "$todo" ]; do
		set -- $todo
		todo=
		for p in "$@"; do
			case $seen in *" $p "*) continue ;; esac
			st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
			[ "$st" = "ii " ] || continue # virtual or not installed
			seen="$seen$p "
			deps=$(dpkg-query -W -f='${Pre-Depends}, ${Depends}' "$p" |
				tr ',' '\n' | sed 's/|.*//; s/(.*//; s/:any//; s/[[:space:]]//g' | sed '/^$/d')
			todo="$todo $deps"
		done
	done
	printf '%s\n' $seen
}

install_apt() { # FACTS STAGE LIST: the builder's own files, listed in LIST
	pkg=$(qemu_package "$1")
	case $pkg in
	"Debian "*) ver=${pkg#Debian } ;;
	*) die "the launcher's QEMU is '$pkg', not a Debian build" ;;
	esac
	have=$(dpkg-query -W -f='${Version}' qemu-system-common 2>/dev/null || true)
	if [ -n "$have" ] && [ "$have" != "$ver" ]; then
		die "the builder's qemu-system-common is $have, the launcher's QEMU is $ver: its modules would not load; use a builder of the launcher's release"
	fi
	want="qemu-system-common libegl-mesa0 libegl1 libgbm1 libgl1-mesa-dri libepoxy0"
	missing=
	for p in $want; do
		[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)" = "ii " ] ||
			missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		apt-get update
		# shellcheck disable=SC2086 # one word per package
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
			$(for p in $missing; do [ "$p" = qemu-system-common ] && echo "$p=$ver" || echo "$p"; done)
	fi
	# What those packages and everything they need install, by real path
	# (Debian lists /lib/... through the usrmerge links).
	merged=
	for d in bin sbin lib lib64; do
		[ -L "/$d" ] && [ "$(readlink -f "/$d")" = "/usr/$d" ] && merged="$merged s#^/$d/#/usr/$d/#;"
	done
	for p in $(deb_closure $want); do
		dpkg-query -L "$p"
	done | sed "$merged" | sort -u | while read -r f; do
		if { [ -f "$f" ] || [ -L "$f" ]; } && [ ! -d "$f" ]; then
			printf '%s\n' "$f"
		fi
	done >"$3"
}

install_gl() {
	facts=$1 root=$2 stage=$2.stage
	[ -s "$facts/qemu-version" ] && [ -s "$facts/files" ] || die "$facts holds no launcher facts"
	own=${LAUNCHER_GL_OS_RELEASE:-/etc/os-release}
	want_id=$(os_field "$facts/os-release" ID) want_rel=$(os_field "$facts/os-release" VERSION_ID)
	have_id=$(os_field "$own" ID) have_rel=$(os_field "$own" VERSION_ID)
	[ "$want_id $want_rel" = "$have_id $have_rel" ] ||
		die "the launcher is $want_id $want_rel, this builder $have_id $have_rel: build with GL_BUILDER_IMAGE of the launcher's release (quay.io/centos/centos:stream$want_rel for CentOS Stream)"
	rm -rf "$stage" "$root"
	mkdir -p "$stage" "$root"
	# dnf installs into an empty root; on Debian the builder's own files
	# are taken from its root.
	if command -v dnf >/dev/null 2>&1; then
		install_dnf "$facts" "$stage"
		(cd "$stage" && find . \( -type f -o -type l \) | sed 's|^\.||') | sort >"$stage.all"
		from=$stage
	elif command -v dpkg-query >/dev/null 2>&1; then
		install_apt "$facts" "$stage" "$stage.all"
		from=/
	else
		die "the builder has neither dnf nor dpkg"
	fi
	# Only files the launcher lacks; no package databases, caches, docs.
	sort "$facts/files" >"$stage.launcher"
	comm -23 "$stage.all" "$stage.launcher" | sed -E '\#^/(var/lib/(rpm|dnf|dpkg)|var/cache|var/log|usr/share/(doc|man|info|licenses)|etc/ld\.so\.cache)(/|$)#d' >"$stage.new"
	[ -s "$stage.new" ] || die "nothing to add: the launcher has every file already"
	case $(cat "$stage.new") in
	*/ui-egl-headless.so*) ;;
	*) die "the packages brought no ui-egl-headless.so (new files: $(wc -l <"$stage.new"))" ;;
	esac
	(cd "$from" && sed 's|^/||' "$stage.new" | tar -cf - --no-recursion -T -) | tar -C "$root" -xf -
	mkdir -p "$root/usr/share/vgpuenv"
	cp "$stage.new" "$root/usr/share/vgpuenv/launcher-gl.files"
	{
		printf 'qemu: %s\n' "$(qemu_package "$facts")"
		printf 'release: %s %s\n' "$want_id" "$want_rel"
		printf 'added files: %s\n' "$(wc -l <"$stage.new")"
	} >"$root/usr/share/vgpuenv/launcher-gl.txt"
	cp "$0" "$root/usr/share/vgpuenv/launcher-gl.sh"
	rm -rf "$stage" "$stage.all" "$stage.launcher" "$stage.new"
	echo "launcher-gl: $(cat "$root/usr/share/vgpuenv/launcher-gl.txt" | tr '\n' ';')"
}

# Whether QEMU lists egl-headless among its display backends (`-display
# help` loads each UI module it has; one that does not load is not listed).
has_egl_headless() {
	out=$("$1" -display help 2>/dev/null) || true
	old_ifs=$IFS
	IFS='
'
	for l in $out; do
		if [ "$l" = egl-headless ]; then
			IFS=$old_ifs
			return 0
		fi
	done
	IFS=$old_ifs
	return 1
}

verify() {
	q=$(find_qemu) || die "no QEMU in this image"
	has_egl_headless "$q" || die "$q lists no egl-headless display: $("$q" -display help 2>&1 | tr '\n' ' ')"
	ldso=
	for l in /lib64/ld-linux-x86-64.so.2 /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2; do
		[ -x "$l" ] && ldso=$l && break
	done
	[ -n "$ldso" ] || die "no dynamic loader found"
	n=0
	while read -r f; do
		case $f in
		*.so | *.so.*) ;;
		*) continue ;;
		esac
		[ -f "$f" ] || continue
		r=$("$ldso" --list "$f" 2>&1) || die "$f does not load: $r"
		case $r in
		*"not found"*) die "$f needs what the launcher lacks: $r" ;;
		esac
		n=$((n + 1))
	done </usr/share/vgpuenv/launcher-gl.files
	echo "launcher-gl: $q lists egl-headless; $n added libraries resolve"
}

case ${1:-} in
facts) facts "$2" ;;
install) install_gl "$2" "$3" ;;
verify) verify ;;
*) die "usage: launcher-gl.sh facts DIR | install FACTS ROOT | verify" ;;
esac
