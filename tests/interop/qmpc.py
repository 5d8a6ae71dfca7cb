#!/usr/bin/env python3
# A minimal QMP client for the migration tests and bench (QEMU 7.2, -qmp unix:SOCK,server=on,wait=off).
#   qmpc.py SOCK CMD [ARGS-JSON]   runs one command, prints its "return" as JSON; exit 1 on an error
#   qmpc.py SOCK wait-migrate SECS [FRACTION]
#       polls query-migrate every 20 ms; without FRACTION until the migration is completed, failed or
#       cancelled, with it until it is active with at most FRACTION of the RAM left to send in its
#       first pass (or it ended); prints the last query-migrate reply. Exit 0 when completed (or, with
#       FRACTION, when the point was reached), 1 otherwise.
import json
import socket
import sys
import time


class Qmp:
    def __init__(self, path, timeout=30):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        end = time.time() + timeout
        while True:
            try:
                self.s.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.time() > end:
                    raise
                time.sleep(0.05)
        self.f = self.s.makefile("rwb")
        self.read()  # greeting
        self.cmd("qmp_capabilities")

    def read(self):
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError("QMP closed")
            m = json.loads(line)
            if "event" not in m:
                return m

    def cmd(self, name, args=None):
        m = {"execute": name}
        if args:
            m["arguments"] = args
        self.f.write(json.dumps(m).encode() + b"\n")
        self.f.flush()
        r = self.read()
        if "error" in r:
            raise RuntimeError("%s: %s" % (name, r["error"].get("desc", r["error"])))
        return r["return"]


def wait_migrate(q, secs, fraction):
    end = time.time() + secs
    while True:
        r = q.cmd("query-migrate")
        st = r.get("status", "none")
        if st in ("completed", "failed", "cancelled"):
            print(json.dumps(r))
            return st == "completed"
        ram = r.get("ram")
        if fraction is not None and st == "active" and ram and ram.get("total"):
            if ram.get("dirty-sync-count", 1) > 1 or ram["remaining"] <= fraction * ram["total"]:
                print(json.dumps(r))
                return True
        if time.time() > end:
            print(json.dumps(r))
            return False
        time.sleep(0.02)


def main():
    if len(sys.argv) < 3:
        sys.stderr.write("usage: qmpc.py SOCK CMD [ARGS-JSON] | SOCK wait-migrate SECS [FRACTION]\n")
        return 2
    try:
        q = Qmp(sys.argv[1])
        if sys.argv[2] == "wait-migrate":
            frac = float(sys.argv[4]) if len(sys.argv) > 4 else None
            return 0 if wait_migrate(q, float(sys.argv[3]), frac) else 1
        args = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
        print(json.dumps(q.cmd(sys.argv[2], args)))
    except (OSError, EOFError, RuntimeError, ValueError) as e:
        sys.stderr.write("qmpc: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
