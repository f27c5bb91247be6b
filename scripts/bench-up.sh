#!/usr/bin/env bash
# make bench-up: how long `vgpuenv up` takes, cold and warm, for 1 and 3
# nodes, and how our one-launch mesa customization compares with
# `virt-customize --install` of the same packages on the same base image.
# A benchmark, not a test: it prints figures and whether each target is met.
# It uses its own cache and state dirs so the user's cache is not touched.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
V=$ROOT/build/vgpuenv
B=$(mktemp -d /tmp/vgpuenv-bench.XXXXXX)
chmod 0711 "$B"
export VGPUENV_CACHE_DIR=$B/cache VGPUENV_STATE_DIR=$B/state
cleanup() {
	for c in "$B"/*.yaml; do [ -e "$c" ] && "$V" down -c "$c" >/dev/null 2>&1 || true; done
	rm -rf "$B"
}
trap cleanup EXIT
"$ROOT/scripts/ensure-libvirtd.sh"

cfg() { # name nodes octet
	printf 'name: %s\nnodes: {count: %s, memory: 1024}\nnetwork: {subnet: 192.168.%s.0/24}\n' "$1" "$2" "$3" >"$B/$1.yaml"
	echo "$B/$1.yaml"
}
secs() { local s=$(date +%s.%N); "$@" >>"$B/log" 2>&1 || { tail -30 "$B/log" >&2; exit 1; }; awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

one=$(cfg bench-one 1 161)
three=$(cfg bench-three 3 162)

# CPU seconds the cluster's QEMU processes used so far (guest boot, setup
# and probe): under TCG the warm up is bound by it.
qemu_cpu() {
	local t=0 p
	for p in $(pgrep -f "guest=vgpuenv-$1-node" || true); do
		t=$(awk -v t="$t" '{printf "%.1f", t + ($14 + $15) / 100}' "/proc/$p/stat")
	done
	echo "$t"
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
ROUNDS=${BENCH_UP_ROUNDS:-3}

echo "bench-up: cold and warm up (TCG unless KVM works here), warm runs x$ROUNDS alternating"
cold1=$(secs "$V" up -c "$one");   secs "$V" down -c "$one" >/dev/null
w1=() w3=() c1=() c3=()
for _ in $(seq "$ROUNDS"); do
	w1+=("$(secs "$V" up -c "$one")");   c1+=("$(qemu_cpu bench-one)");   secs "$V" down -c "$one" >/dev/null
	w3+=("$(secs "$V" up -c "$three")"); c3+=("$(qemu_cpu bench-three)"); secs "$V" down -c "$three" >/dev/null
done
warm1=$(median "${w1[@]}"); warm3=$(median "${w3[@]}")
cpu1=$(median "${c1[@]}"); cpu3=$(median "${c3[@]}")
rm -rf "$VGPUENV_CACHE_DIR/images" "$VGPUENV_CACHE_DIR/digests"
cold3=$(secs "$V" up -c "$three"); secs "$V" down -c "$three" >/dev/null

echo "bench-up: customization, ours vs virt-customize, same base and packages"
rm -rf "$VGPUENV_CACHE_DIR/images"
ours=$(secs "$V" image build -c "$one")
again=$(secs "$V" image build -c "$one")
base=$(ls -d "$VGPUENV_CACHE_DIR"/base/*/ | head -1)disk.qcow2
pkgs=$(python3 - "$(ls -d "$VGPUENV_CACHE_DIR"/images/*/ | head -1)meta.json" <<'PY'
import json, sys
print(",".join(json.load(open(sys.argv[1]))["packages"]))
PY
)
qemu-img create -q -f qcow2 -b "$base" -F qcow2 "$B/vc.qcow2"
vc=$(secs env LIBGUESTFS_BACKEND_SETTINGS=force_tcg virt-customize -q -a "$B/vc.qcow2" --install "$pkgs")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
verdict() { awk -v a="$1" -v b="$2" 'BEGIN{print (a<=b) ? "met" : "NOT met"}'; }
echo
printf '%-48s %8s\n' "measure" "seconds"
printf '%-48s %8s\n' "cold up, 1 node (base build + customize + boot)" "$cold1"
printf '%-48s %8s\n' "warm up, 1 node (image cached)" "$warm1"
printf '%-48s %8s\n' "cold up, 3 nodes (customize + boot)" "$cold3"
printf '%-48s %8s\n' "warm up, 3 nodes (image cached)" "$warm3"
printf '%-48s %8s\n' "mesa customization, vgpuenv (one launch)" "$ours"
printf '%-48s %8s\n' "mesa customization, virt-customize --install" "$vc"
printf '%-48s %8s\n' "second customization, same inputs" "$again"
echo
r3=$(ratio "$warm3" "$warm1"); rc=$(ratio "$ours" "$vc")
echo "warm up runs, 1 node: ${w1[*]} s; 3 nodes: ${w3[*]} s (medians above)"
echo "QEMU CPU time at the end of a warm up (median): 1 node ${cpu1} s, 3 nodes ${cpu3} s on $(nproc) host cores"
echo "  -> 3 nodes cannot take less than $(awk -v c="$cpu3" -v n="$(nproc)" 'BEGIN{printf "%.1f", c/n}') s here," \
	"$(ratio "$(awk -v c="$cpu3" -v n="$(nproc)" 'BEGIN{print c/n}')" "$warm1")x the 1-node up, whatever vgpuenv does"
echo "warm 3-node / warm 1-node = $r3 (target <= 1.5: $(verdict "$r3" 1.5))"
echo "second customization = ${again}s (target <= 2 s: $(verdict "$again" 2))"
echo "ours / virt-customize = $rc (target <= 1.0: $(verdict "$rc" 1.0))"
