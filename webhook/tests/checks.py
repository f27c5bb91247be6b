"""The checks of our Python gRPC test programs (device_plugin_test.py,
hook_sidecar_test.py): numbered "ok N - what" lines, a FAIL that shows the
logs of the programs the test started, and no such program left running
when the test ends, however it ends."""

import atexit
import sys


class Checks:
    def __init__(self, kind):
        self.kind = kind  # "plugin", "sidecar": names the logs on failure
        self.count = 0
        self.procs = []  # (Popen, log path) of what the test started
        atexit.register(self.stop_leftovers)

    def stop_leftovers(self):
        """A failed check exits at once: nothing started may outlive the test."""
        for p, _ in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    def ok(self, what):
        self.count += 1
        print("ok %d - %s" % (self.count, what), flush=True)

    def fail(self, what):
        print("FAIL: " + what, flush=True)
        for _, log in self.procs:
            print("--- %s log (%s):" % (self.kind, log))
            print(open(log).read()[-3000:])
        sys.exit(1)

    def check(self, cond, what):
        if not cond:
            self.fail(what)

    def passed(self):
        print("PASS: %d checks" % self.count)
