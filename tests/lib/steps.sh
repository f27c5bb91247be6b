# Step timing for the long VM tests (display_chain.sh, vgpu_local.sh): each
# step's own time and the total since the start, so a run's log shows where
# the minutes went.
#   steps_start [WIDTH]   start the clock; step names are padded to WIDTH
#   step NAME             print "== step NAME  Ns (total Ms)", N the seconds
#                         since the previous step
steps_start() {
	steps_width=${1:-44}
	steps_started=$(date +%s)
	steps_last=$steps_started
}
step() {
	local now
	now=$(date +%s)
	printf "== step %-${steps_width}s %4ss (total %ss)\n" "$1" $((now - steps_last)) $((now - steps_started))
	steps_last=$now
}
