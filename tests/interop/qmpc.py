#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A small QMP client for the interop tests and the migration bench (QEMU 7.2,
-qmp unix:SOCK,server=on,wait=off).

usage: qmpc.py SOCKET STEP...

Each STEP runs in order on one QMP connection; the first that fails ends the run:
  COMMAND or COMMAND=JSON   runs a QMP command (arguments as a JSON object); prints its return
                            as one line of JSON; a QMP error fails the run.
  wait:STATUS[:SECONDS]     polls query-migrate until its status is STATUS (default 30 s); prints
                            the last answer as key=value words (status, total_time, downtime,
                            setup_time, ram_transferred, ...). A migration that ends with another
                            status (failed, cancelled, completed) fails the run.
  wait-ram:BYTES[:SECONDS]  polls query-migrate until an active migration has sent BYTES of RAM.
  wait-migrate:SECONDS[:FRACTION]
                            polls query-migrate; without FRACTION until the migration is completed,
                            failed or cancelled, with it until it is active with at most FRACTION of
                            the RAM left to send in its first pass (or it ended); prints the last
                            query-migrate answer as one line of JSON. Fails unless the migration
                            completed (or, with FRACTION, the point was reached).
query-migrate is polled every 20 ms. Exit status: 0, 1 with the reason on stderr, 2 for a usage
error.
"""
import json
import socket
import sys
import time

FINAL = ("completed", "failed", "cancelled")
POLL = 0.02


class Qmp:
    def __init__(self, path, timeout=30.0):
        end = time.monotonic() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.settimeout(timeout)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)
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
        time.sleep(POLL)


def wait_migrate(q, seconds, fraction):
    end = time.monotonic() + seconds
    while True:
        info = q.cmd("query-migrate")
        st = info.get("status", "none")
        if st in FINAL:
            print(json.dumps(info))
            if st != "completed":
                raise RuntimeError("migration %s" % st)
            return
        ram = info.get("ram")
        if fraction is not None and st == "active" and ram and ram.get("total"):
            if ram.get("dirty-sync-count", 1) > 1 or ram["remaining"] <= fraction * ram["total"]:
                print(json.dumps(info))
                return
        if time.monotonic() > end:
            print(json.dumps(info))
            raise RuntimeError("timeout waiting for the migration (status %s)" % st)
        time.sleep(POLL)


def step(q, s):
    kind, colon, rest = s.partition(":")
    if colon and kind in ("wait", "wait-ram", "wait-migrate"):
        arg, *more = rest.split(":")
        if kind == "wait-migrate":
            wait_migrate(q, float(arg), float(more[0]) if more else None)
            return
        seconds = float(more[0]) if more else 30.0
        if kind == "wait":
            wait(q, arg, seconds)
        else:
            wait(q, "active", seconds, int(arg))
        return
    name, _, args = s.partition("=")
    print(json.dumps(q.cmd(name, json.loads(args) if args else None)))


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    try:
        q = Qmp(argv[1])
        for s in argv[2:]:
            step(q, s)
            sys.stdout.flush()
    except (OSError, EOFError, RuntimeError, ValueError) as e:
        sys.stdout.flush()
        sys.stderr.write("qmpc.py: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
