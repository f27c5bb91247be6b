#!/usr/bin/env python3
"""Compare the plan `vgpuenv up --dry-run` printed with the steps `up -v` ran.

usage: plan_steps.py PLAN_OUTPUT RUN_OUTPUT

The plan lists "  N. [lane] name" (lane optional); a run with -v logs
"vgpuenv: debug: step N/M name" as each step starts (or is skipped), and
"vgpuenv: [N/M] lane: name: ..." lines. Exits 1, saying what differs, unless
the run started exactly the plan's steps, with the same numbers and names,
and in the plan's order: serial steps one after the other, each lane's steps
in their order (lanes run side by side, so steps of different lanes may
interleave). Prints the steps compared.
"""
import re
import sys


def plan_steps(text):
    steps, lanes = [], {}
    for line in text.splitlines():
        m = re.match(r"^\s*(\d+)\. (?:\[([^\]]+)\] )?(.+)$", line)
        if m:
            n = int(m.group(1))
            steps.append((n, m.group(3)))
            lanes[n] = m.group(2)
    return steps, lanes


def run_steps(text):
    out = []
    for line in text.splitlines():
        m = re.match(r"^vgpuenv: debug: step (\d+)/(\d+) (.+)$", line)
        if m:
            out.append((int(m.group(1)), m.group(3)))
    return out


def main():
    plan_text = open(sys.argv[1]).read()
    run_text = open(sys.argv[2]).read()
    plan, lanes = plan_steps(plan_text)
    ran = run_steps(run_text)
    if not plan:
        sys.exit("plan_steps: the plan lists no steps")
    if sorted(ran) != plan:
        missing = [s for s in plan if s not in ran]
        extra = [s for s in ran if s not in plan]
        sys.exit(f"plan_steps: the run did not start exactly the plan's steps\n"
                 f"  in the plan, not run: {missing}\n  run, not in the plan: {extra}")
    if len(set(ran)) != len(ran):
        sys.exit("plan_steps: a step started twice")
    # Order: a serial step starts after every step before it; a lane's
    # steps start in plan order.
    pos = {s: i for i, s in enumerate(ran)}
    for (n, name) in plan:
        lane = lanes[n]
        for (m, other) in plan:
            if m >= n:
                break
            if lane is None or lanes[m] is None or lanes[m] == lane:
                if pos[(m, other)] > pos[(n, name)]:
                    sys.exit(f"plan_steps: step {n} ({name}) started before step {m} ({other})")
    print(f"plan_steps: {len(plan)} steps run as planned, in order")
    for n, name in plan:
        print(f"  {n}. {name}" + (f" [{lanes[n]}]" if lanes[n] else ""))


main()
