#!/usr/bin/env bash
# The KVM verdict comes from a booted kernel (provision/base/accel.c), shown
# with a QEMU stand-in on PATH (tests/standins/qemu-system-x86_64) whose KVM
# runs but never gets through a kernel, the real QEMU for everything else:
#   - doctor says KVM is not used, with the evidence (what ran, how long,
#     what it printed), within the probe's deadline; the same kernel boots
#     to its init under TCG (the control);
#   - a KVM that does boot the kernel (the stand-in's "works" mode) is used;
#   - the verdict is cached per boot and doctor --reprobe probes again;
#   - local.accel: kvm on the lying KVM fails the plan's first step within
#     its deadline with the evidence, and creates nothing;
#   - `vgpuenv image build` (its first step is the verdict) goes on under
#     TCG: the libguestfs appliance would hang on this KVM.
. "$(dirname "$0")/../lib/common.sh"
cd "$(dirname "$0")/../.."
root=$PWD
[ -x build/vgpuenv ] || skip "build/vgpuenv not built (run make)"
[ -x build/vgpuenv-kvm-init ] || skip "build/vgpuenv-kvm-init not built (run make)"
ls /boot/vmlinuz-* >/dev/null 2>&1 || skip "no kernel under /boot (make deps installs linux-image-amd64)"
[ -r /dev/kvm ] || skip "no /dev/kvm: the verdict is TCG without a probe"
T=$(mktemp -d /tmp/vgpuenv-kvm.XXXXXX)
cache=${VGPUENV_CACHE_DIR:-/var/cache/vgpuenv}
verdict_file=$cache/accel-$(cat /proc/sys/kernel/random/boot_id).json
# The stand-in's verdicts must not outlive the test: the next real run
# probes again.
cleanup() {
	set +e # best effort: whatever is left goes
	rm -f "$verdict_file"
	rm -rf "$T"
}
trap cleanup EXIT
export PATH="$root/tests/standins:$PATH" VGPUENV_STATE_DIR=$T/state QEMU_STANDIN_LOG=$T/qemu.log
cat >"$T/auto.yaml" <<YAML
name: kvmverdict
deadlines: {kvm_probe: 5}
YAML
kvm_check() { json "$1" '[c for c in d["host"] if c["check"] == sys.argv[3]][0]' "$2"; }
field() { json "$1" "[c for c in d['host'] if c['check'] == '$2'][0]$3"; }

rm -f "$verdict_file"
start=$(date +%s.%N)
rc=0
build/vgpuenv doctor --json -c "$T/auto.yaml" >"$T/hangs.json" 2>"$T/hangs.err" || rc=$?
dt=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
[ "$(field "$T/hangs.json" kvm "['status']")" = warn ] || { cat "$T/hangs.json"; fail "a lying KVM was not refused"; }
reason=$(field "$T/hangs.json" kvm "['detail']")
case "$reason" in *"kvm did not boot /boot/vmlinuz-"*"within 5s (it ran but printed no vgpuenv-kvm-probe: init ran)"*) ;;
*) fail "no clear reason: $reason" ;; esac
cmd=$(field "$T/hangs.json" kvm "['evidence']['command']")
case "$cmd" in *"-accel kvm"*"-kernel /boot/vmlinuz-"*"-initrd "*) ;; *) fail "evidence lacks the command: $cmd" ;; esac
secs=$(field "$T/hangs.json" kvm "['evidence']['seconds']")
awk -v s="$secs" 'BEGIN{exit !(s >= 4.9 && s < 12)}' || fail "the probe ran ${secs}s, deadline 5s"
ok "lying KVM: not used after ${secs}s (deadline 5s), evidence: $cmd"
[ "$(field "$T/hangs.json" tcg "['status']")" = ok ] || { cat "$T/hangs.json"; fail "the TCG control failed"; }
tcg_out=$(field "$T/hangs.json" tcg "['evidence']['output']")
case "$tcg_out" in *"vgpuenv-kvm-probe: init ran"*) ;; *) fail "the TCG control printed no marker: $tcg_out" ;; esac
ok "control: the same kernel reached its init under TCG in $(field "$T/hangs.json" tcg "['evidence']['seconds']")s"
pgrep -f "qemu-system-x86_64 -accel kvm .*vgpuenv-kvm-probe" >/dev/null && fail "a probe QEMU is left running"

# cached for this boot: doctor again does not probe
: >"$T/qemu.log"
build/vgpuenv doctor --json -c "$T/auto.yaml" >"$T/cached.json" 2>/dev/null || true
case "$(field "$T/cached.json" kvm "['detail']")" in *"(cached this boot)"*) ;; *) fail "second doctor did not use the cached verdict" ;; esac
grep -q -- "-accel kvm" "$T/qemu.log" && fail "the cached verdict probed again"
ok "the verdict is cached per boot"

# a KVM that boots the kernel is used; --reprobe probes again (the "works"
# stand-in boots under TCG, which needs more than a real KVM's second)
cat >"$T/works.yaml" <<YAML
name: kvmverdict
deadlines: {kvm_probe: 180}
YAML
QEMU_STANDIN_KVM=works build/vgpuenv doctor --json --reprobe -c "$T/works.yaml" >"$T/works.json" 2>/dev/null || true
[ "$(field "$T/works.json" kvm "['status']")" = ok ] || { cat "$T/works.json"; fail "a working KVM was refused"; }
case "$(field "$T/works.json" kvm "['detail']")" in *"kvm booted /boot/vmlinuz-"*"to its init in"*) ;;
*) fail "working KVM: $(field "$T/works.json" kvm "['detail']")" ;; esac
ok "a KVM that boots the kernel is used: $(field "$T/works.json" kvm "['detail']")"

# local.accel: kvm on the lying KVM: the first step fails, nothing is made
cat >"$T/kvm.yaml" <<YAML
name: kvmforced
network: {subnet: 192.168.187.0/24}
local: {accel: kvm}
deadlines: {kvm_probe: 5}
YAML
start=$(date +%s.%N)
rc=0
build/vgpuenv up -c "$T/kvm.yaml" >"$T/forced.out" 2>&1 || rc=$?
dt=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
[ $rc = 1 ] || { cat "$T/forced.out"; fail "local.accel kvm on a lying KVM: exit $rc, want 1"; }
has "$T/forced.out" "local.accel is kvm but KVM does not work here: kvm did not boot" || { cat "$T/forced.out"; fail "no clear message"; }
has "$T/forced.out" "it printed:" || { cat "$T/forced.out"; fail "the message lacks the evidence"; }
has "$T/forced.out" "step 'kvm-verdict' failed" || { cat "$T/forced.out"; fail "the step is not named"; }
awk -v d="$dt" 'BEGIN{exit !(d < 30)}' || fail "took ${dt}s"
[ ! -e "$T/state/kvmforced" ] || fail "a state dir was made"
virsh -c qemu:///system net-list --all --name 2>/dev/null | grep -q kvmforced && fail "a network was made"
ok "local.accel kvm on a lying KVM: failed in ${dt}s at kvm-verdict, with the evidence; nothing made"

# image build: the verdict step decides TCG and the build goes on (cached
# images: no appliance; the appliance's force_tcg is shown in its own test)
rm -f "$verdict_file"
build/vgpuenv image build -c "$T/auto.yaml" >"$T/image.out" 2>&1 || { cat "$T/image.out"; fail "image build under a lying KVM"; }
has "$T/image.out" "KVM is not used: kvm did not boot" || { cat "$T/image.out"; fail "image build did not decide TCG"; }
ok "image build went on under TCG"
echo PASS
