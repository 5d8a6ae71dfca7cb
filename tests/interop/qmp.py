#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A small QMP client for the interop tests.

usage: qmp.py SOCKET STEP...

Each STEP runs in order on one QMP connection:
  COMMAND or COMMAND=JSON   runs a QMP command (arguments as a JSON object); prints its return
                            as one line of JSON; a QMP error fails the run.
  wait:STATUS[:SECONDS]     polls query-migrate every 50 ms until its status is STATUS (default
                            30 s); prints the last answer as key=value words (status, total_time,
                            downtime, setup_time, ram_transferred, ...). A migration that ends
                            with another status (failed, cancelled, completed) fails the run.
  wait-ram:BYTES[:SECONDS]  polls query-migrate until an active migration has sent BYTES of RAM.
Exit status: 0, or 1 with the reason on stderr.
"""
import json
import socket
import sys
import time

FINAL = ("completed", "failed", "cancelled")


class Qmp:
    def __init__(self, path, timeout=10.0):
        end = time.monotonic() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)
        self.f = self.s.makefile("rw")
        self.read()  # greeting
        self.cmd("qmp_capabilities")

    def read(self):
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError("QMP connection closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def cmd(self, name, args=None):
        req = {"execute": name}
        if args:
            req["arguments"] = args
        self.f.write(json.dumps(req) + "\n")
        self.f.flush()
        msg = self.read()
        if "error" in msg:
            raise RuntimeError("%s: %s" % (name, msg["error"].get("desc", msg["error"])))
        return msg.get("return")


def words(info):
    out = {"status": info.get("status", "none")}
    for k in ("total-time", "downtime", "expected-downtime", "setup-time"):
        if k in info:
            out[k.replace("-", "_")] = info[k]
    ram = info.get("ram", {})
    for k in ("transferred", "dirty-sync-count", "remaining"):
        if k in ram:
            out["ram_" + k.replace("-", "_")] = ram[k]
    return " ".join("%s=%s" % kv for kv in out.items())


def wait(q, want, seconds, min_ram=0):
    end = time.monotonic() + seconds
    while True:
        info = q.cmd("query-migrate")
        st = info.get("status", "none")
        sent = info.get("ram", {}).get("transferred", 0)
        if st == want and sent >= min_ram:
            print(words(info))
            return
        if st in FINAL and st != want:
            raise RuntimeError("migration %s, waited for %s (%s)" % (st, want, words(info)))
        if time.monotonic() > end:
            raise RuntimeError("timeout waiting for %s (%s)" % (want, words(info)))
        time.sleep(0.05)


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 1
    try:
        q = Qmp(argv[1])
        for step in argv[2:]:
            if step.startswith("wait:") or step.startswith("wait-ram:"):
                kind, arg, *rest = step.split(":")
                seconds = float(rest[0]) if rest else 30.0
                if kind == "wait":
                    wait(q, arg, seconds)
                else:
                    wait(q, "active", seconds, int(arg))
                continue
            name, _, args = step.partition("=")
            print(json.dumps(q.cmd(name, json.loads(args) if args else None)))
        sys.stdout.flush()
    except (OSError, EOFError, RuntimeError, ValueError) as e:
        sys.stderr.write("qmp.py: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
