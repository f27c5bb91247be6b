# Container images in tests, without a registry (sourced by tests that build
# images: webhook_image.sh, launcher_image.sh).
#
# - oci_podman ARGS: podman with the flags that work on these machines
#   (runc, cgroupfs; see ../shared/ENVIRONMENT.md) and one store under the
#   image cache ($VGPUENV_CACHE_DIR/podman), so a second run finds the
#   bases and every unchanged build step cached.
# - oci_debian_base NAME LIST...: a local base image from mmdebstrap
#   (Debian 12 minbase plus the packages named in the LIST files, one per
#   line, # comments) imported with `podman import`; cached by the content
#   of what makes it (suite, variant, package names, mmdebstrap's version).
#   Prints the image reference.
# - oci_bundle_run ...: run an image as a runc bundle (`podman run` cannot
#   set RLIMIT_NOFILE/NPROC here): see its comment.
# Needs: tests/lib/common.sh sourced first (fail, step).

OCI_CACHE=${VGPUENV_CACHE_DIR:-/var/cache/vgpuenv}
OCI_STORE=$OCI_CACHE/podman
OCI_RUNROOT=/tmp/vgpuenv-podman-run

oci_podman() {
	podman --root "$OCI_STORE/storage" --runroot "$OCI_RUNROOT" --runtime "$(command -v runc)" \
		--cgroup-manager=cgroupfs --storage-driver=overlay --events-backend=none "$@"
}

oci_need() {
	[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (podman's store, runc)"; exit 77; }
	local t
	for t in podman runc mmdebstrap; do
		command -v "$t" >/dev/null || fail "$t is missing (make deps)"
	done
	mkdir -p "$OCI_STORE" "$OCI_CACHE/oci-bases"
}

# The packages of LIST files, sorted, comma-separated.
oci_packages() {
	sed 's/#.*//' "$@" | tr -s ' \t' '\n\n' | sed '/^$/d' | sort -u | paste -sd, -
}

oci_debian_base() {
	local name=$1 pkgs key tar ref t0
	shift
	pkgs=$(oci_packages "$@")
	key=$(printf 'bookworm minbase %s %s\n' "$pkgs" "$(mmdebstrap --version)" | sha256sum | cut -c1-16)
	ref=localhost/vgpuenv-test/$name:$key
	tar=$OCI_CACHE/oci-bases/$name-$key.tar
	(
		flock 9
		if ! oci_podman image exists "$ref"; then
			if [ ! -s "$tar" ]; then
				t0=$(date +%s)
				mmdebstrap --variant=minbase --format=tar --include="$pkgs" bookworm "$tar.tmp" \
					>"$tar.log" 2>&1 || { tail -20 "$tar.log" >&2; exit 1; }
				mv "$tar.tmp" "$tar"
				echo "    base $name: mmdebstrap $(($(date +%s) - t0)) s (cached as $tar)" >&2
			fi
			oci_podman import "$tar" "$ref" >/dev/null || exit 1
		fi
	) 9>"$OCI_CACHE/oci-bases/.lock" || fail "cannot make the base image $name ($tar.log)"
	echo "$ref"
}

# oci_bundle_run IMAGE DIR [--uid N] [--env K=V]... [--bind HOST:CTR[:ro]]... [--bg] -- ARGS...
# Runs ARGS in IMAGE's root file system with runc, in the host's network
# namespace (so a server inside is reached on 127.0.0.1), as the image's
# user unless --uid, with the image's environment. The root is an overlay
# of `podman image mount` (nothing copied) with an upper layer in DIR, as a
# runtime gives a container a writable layer for its mount points; runc
# then makes it read-only, as readOnlyRootFilesystem does. DIR gets
# config.json and the logs. --bg: in the background, pid in DIR/pid (stop it
# with oci_bundle_stop); otherwise the root is unmounted when ARGS end.
oci_bundle_run() {
	local image=$1 dir=$2 uid="" bg=0 env=() binds=()
	shift 2
	while [ $# -gt 0 ]; do
		case $1 in
		--uid) uid=$2; shift 2 ;;
		--env) env+=("$2"); shift 2 ;;
		--bind) binds+=("$2"); shift 2 ;;
		--bg) bg=1; shift ;;
		--) shift; break ;;
		*) fail "oci_bundle_run: unknown option $1" ;;
		esac
	done
	mkdir -p "$dir/upper" "$dir/work" "$dir/rootfs"
	local lower root=$dir/rootfs
	lower=$(oci_podman image mount "$image") || fail "podman image mount $image"
	mount -t overlay overlay -o "lowerdir=$lower,upperdir=$dir/upper,workdir=$dir/work" "$root" ||
		fail "overlay mount of $image"
	oci_podman image inspect "$image" --format '{{json .Config}}' >"$dir/image-config.json"
	(cd "$dir" && rm -f config.json && runc spec) || fail "runc spec"
	/usr/bin/python3 - "$dir" "$root" "$uid" "${#env[@]}" "${env[@]}" "${#binds[@]}" "${binds[@]}" "$@" <<'EOF' ||
import json, sys
d, root, uid = sys.argv[1:4]
rest = sys.argv[4:]
ne = int(rest[0]); env = rest[1:1 + ne]; rest = rest[1 + ne:]
nb = int(rest[0]); binds = rest[1:1 + nb]; args = rest[1 + nb:]
img = json.load(open(d + "/image-config.json"))
c = json.load(open(d + "/config.json"))
user = (img.get("User") or "0:0").split(":")
if uid:
    user = [uid, uid]
c["root"] = {"path": root, "readonly": True}
c["process"].update({"terminal": False, "args": args, "cwd": "/",
                     "user": {"uid": int(user[0]), "gid": int(user[1] if len(user) > 1 else user[0])},
                     "env": (img.get("Env") or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]) + env})
c["process"].pop("rlimits", None)  # runc here cannot set them (../shared/ENVIRONMENT.md)
c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
for b in binds:
    p = b.split(":")
    c["mounts"].append({"destination": p[1], "type": "bind", "source": p[0],
                        "options": ["rbind", "rprivate", "ro" if p[2:] == ["ro"] else "rw"]})
json.dump(c, open(d + "/config.json", "w"), indent=1)
EOF
		fail "cannot write $dir/config.json"
	local id
	id=vgpuenv-$(basename "$dir")-$$
	echo "$id" >"$dir/id"
	if [ $bg -eq 1 ]; then
		rm -f "$dir/rc"
		(
			rc=0
			runc --root "$OCI_RUNROOT/runc" run --bundle "$dir" "$id" >"$dir/out" 2>&1 </dev/null || rc=$?
			echo "$rc" >"$dir/rc"
		) &
		echo $! >"$dir/pid"
		return 0
	fi
	local rc=0
	runc --root "$OCI_RUNROOT/runc" run --bundle "$dir" "$id" </dev/null || rc=$?
	umount "$root"
	return $rc
}

# Whether a --bg bundle's process has ended (DIR/rc holds its status).
oci_bundle_ended() { [ -s "$1/rc" ]; }

# Stop a --bg bundle (SIGTERM, up to 10 s, then SIGKILL) unless it ended;
# prints its exit status.
oci_bundle_stop() {
	local dir=$1 id
	id=$(cat "$dir/id")
	if ! oci_bundle_ended "$dir"; then
		runc --root "$OCI_RUNROOT/runc" kill "$id" TERM 2>/dev/null || true
		for _ in $(seq 100); do oci_bundle_ended "$dir" && break; sleep 0.1; done
		oci_bundle_ended "$dir" || runc --root "$OCI_RUNROOT/runc" kill "$id" KILL 2>/dev/null || true
		for _ in $(seq 50); do oci_bundle_ended "$dir" && break; sleep 0.1; done
	fi
	runc --root "$OCI_RUNROOT/runc" delete --force "$id" >/dev/null 2>&1 || true
	umount "$dir/rootfs" 2>/dev/null || true
	rm -f "$dir/pid"
	cat "$dir/rc" 2>/dev/null || echo "killed"
}

# oci_webhook_image TAG LOG: mesa-injector's image, built from
# webhook/deploy/Containerfile offline from the mmdebstrap bases (run from
# the repository root). Returns podman's status; its output goes to LOG.
oci_webhook_image() {
	local b r
	b=$(oci_debian_base webhook-build webhook/deploy/packages-build) &&
		r=$(oci_debian_base webhook-run webhook/deploy/packages-run) || return 1
	oci_podman build --layers=false --pull=never --network=none --build-arg BUILD_BASE="$b" \
		--build-arg RUN_BASE="$r" -f webhook/deploy/Containerfile -t "$1" . >"$2" 2>&1
}

# oci_launcher_images STOCK GL LOG: the stock virt-launcher stand-in
# (tests/fixtures/launcher/Containerfile.stock) tagged STOCK, and the
# recipe's image built FROM it (images/launcher/Containerfile) tagged GL,
# both offline; the builder is the stand-in's Debian base.
oci_launcher_images() {
	local base
	base=$(oci_debian_base launcher tests/fixtures/launcher/packages) || return 1
	oci_podman build --layers=false --pull=never --network=none --build-arg BASE="$base" \
		-f tests/fixtures/launcher/Containerfile.stock -t "$1" . >"$3" 2>&1 &&
		oci_podman build --layers=false --pull=never --network=none --build-arg LAUNCHER_IMAGE="$1" \
			--build-arg GL_BUILDER_IMAGE="$base" -f images/launcher/Containerfile -t "$2" . >>"$3" 2>&1
}
