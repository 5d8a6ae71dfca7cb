#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Every option a tool lists is one it takes, and its man page lists the same ones.

For vhu-net, vhu-blk and each vhu-fe command: the options of --help (printed from the
command's option table) and the options of the man page's option sections must be the same
set, and each, long and short, given a valid argument and followed by --help, must be
accepted (exit 0, no "unrecognized option", no "bad value"). And vhu-net's --vduse
NAME[,mac=MAC] refuses a bad name or MAC before creating anything; both daemons' --user
refuses an unknown or malformed USER[:GROUP].

usage: options.py BUILD-DIR SOURCE-DIR
"""
import os
import re
import subprocess
import sys

build, src = sys.argv[1], sys.argv[2]
tools = os.path.join(build, "tools")
man = os.path.join(src, "docs", "man")

# A valid argument for each argument name (the table's "PATH", "N", ...); options whose
# argument is a choice get their own.
VALUES = {"PATH": "/tmp/vhu-options.sock", "N": "2", "MODE": "0660", "FILE": "/dev/null",
          "SIZE": "1M", "BYTES": "512", "IFNAME": "vhutap0", "S": "1", "MS": "100",
          "ID": "x", "PCT": "50", "DIR": "/tmp", "GROUP": str(os.getgid()),
          "USER[:GROUP]": "65534:65534"}
BY_OPTION = {"rw": "randrw", "mode": "loop", "type": "blk", "socket-mode": "0660", "fd": "3"}

# "  -s, --socket-path PATH   text" or "      --sink   text"
HELP_ROW = re.compile(r"^  (?:-(\w), |    )--([a-z][a-z0-9-]*)(?: (\S+))?")
# .BR \-s ", " \-\-socket-path " \fIPATH\fR"   .BI \-\-poll-us " N"   .B \-\-sink
MAN_ROW = re.compile(r'^\.B[IR]? (?:\\-(\w) ", " )?\\-\\-([a-z][a-z0-9-]*)')

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def help_options(cmd):
    out = subprocess.run(cmd + ["--help"], capture_output=True, text=True, timeout=10)
    if out.returncode != 0:
        fail("%s --help: exit %d" % (" ".join(cmd), out.returncode))
    opts = {}
    for line in out.stdout.splitlines():
        m = HELP_ROW.match(line)
        if m:
            opts[m.group(2)] = (m.group(1), m.group(3))
    return opts


def man_options(page, sections):
    """Option entries (the line after .TP) of the named .SH sections."""
    opts = {}
    section, after_tp = None, False
    with open(os.path.join(man, page)) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith(".SH "):
                section = line[4:].strip('"')
            elif after_tp and section in sections:
                m = MAN_ROW.match(line)
                if m:
                    opts[m.group(2)] = m.group(1)
            after_tp = line == ".TP"
    return opts


def accepted(cmd, args):
    try:
        out = subprocess.run(cmd + args + ["--help"], capture_output=True, text=True,
                             timeout=10)
    except subprocess.TimeoutExpired:
        return "no exit within 10 s"
    if out.returncode != 0 or "unrecognized" in out.stderr or "bad value" in out.stderr:
        return "exit %d: %s" % (out.returncode, out.stderr.strip().splitlines()[:1])
    return None


def check(name, cmd, page, sections):
    table = help_options(cmd)
    doc = man_options(page, sections)
    if not table:
        fail("%s: no options in --help" % name)
    for o in sorted(set(table) - set(doc)):
        fail("%s: --%s is in --help but not in %s" % (name, o, page))
    for o in sorted(set(doc) - set(table)):
        fail("%s: --%s is in %s but not in --help" % (name, o, page))
    for o in sorted(set(table) | set(doc)):
        short, arg = table.get(o, (doc.get(o), None))
        if o in doc and doc[o] != short:
            fail("%s: --%s has short name %s in --help, %s in %s" % (name, o, short,
                                                                      doc[o], page))
        args = [BY_OPTION.get(o, VALUES.get(arg, "1"))] if arg else []
        for spelling in ["--" + o] + (["-" + short] if short else []):
            why = accepted(cmd, [spelling] + args)
            if why:
                fail("%s %s %s refused: %s" % (name, spelling, " ".join(args), why))
            else:
                print("ok: %s %s %s" % (name, spelling, " ".join(args)))


check("vhu-net", [os.path.join(tools, "vhu-net")], "vhu-net.1", {"OPTIONS"})
if os.path.exists(os.path.join(tools, "vhu-blk")):
    check("vhu-blk", [os.path.join(tools, "vhu-blk")], "vhu-blk.1", {"OPTIONS"})
for c in ["probe", "net-bench", "blk-bench"]:
    check("vhu-fe " + c, [os.path.join(tools, "vhu-fe"), c], "vhu-fe.1",
          {"COMMON OPTIONS", c.upper() + " OPTIONS"})

# vhu-net --vduse NAME[,mac=MAC]: a bad NAME or MAC, or two --vduse of one name or MAC, is
# refused before anything is created (exit 2, "refused:"); a good one gets past the checks to
# /dev/vduse/control (exit 1 on a machine without VDUSE; where it exists the good cases are left
# out, as they would create devices).
def vduse_args(*args):
    cmd = [os.path.join(tools, "vhu-net")]
    for a in args:
        cmd += ["--vduse", a]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=3)
        return out.returncode, out.stderr
    except subprocess.TimeoutExpired:
        return None, ""


M = "02:00:00:00:00:01"
for bad in [["x,mac=01:00:00:00:00:01"], ["x,mac=00:00:00:00:00:00"], ["x,mac=02:00:00:00:00:0g"],
            ["x,mac=%s:02" % M], ["x,mac="], [",mac=" + M], ["a/b"], ["n" * 256],
            ["x,mac=02:00:00:00:00:+1"], ["x,mac=02:00:00:00:00:1"], ["x,mac=0x:00:00:00:00:01"],
            ["x,MAC=" + M], ["x, mac=" + M], ["x y"], ["."], [".."], ["a", "a"],
            ["a,mac=" + M, "b,mac=" + M], ["a,mac=" + M, "a,mac=02:00:00:00:00:02"]]:
    rc, err = vduse_args(*bad)
    what = " --vduse ".join(a[:40] for a in bad)
    if rc != 2 or "vhu-net: --vduse" not in err or "refused:" not in err:
        fail("vhu-net --vduse %s: exit %s, not refused: %s" % (what, rc, err.strip()[:200]))
    else:
        print("ok: vhu-net --vduse %s refused" % what)
if not os.path.exists("/dev/vduse/control"):
    for good in [["vn0"], ["vn0,mac=" + M], ["n" * 255], ["a", "b"],
                 ["a,mac=" + M, "b,mac=02:00:00:00:00:02"]]:
        rc, err = vduse_args(*good)
        what = " --vduse ".join(a[:40] for a in good)
        if rc != 1 or "/dev/vduse/control" not in err:
            fail("vhu-net --vduse %s: exit %s, not as far as VDUSE: %s" % (what, rc,
                                                                         err.strip()[:200]))
        else:
            print("ok: vhu-net --vduse %s accepted" % what)
# --user USER[:GROUP]: root, an unknown user or group, a number with no passwd entry and no
# group, or a malformed one is refused while the options are parsed (exit 2), before any port
# exists.
for tool, more in (("vhu-net", ["--loopback"]), ("vhu-blk", ["--null", "1M"])):
    if not os.path.exists(os.path.join(tools, tool)):
        continue
    for bad in ("root", "0", "0:65534", "no-such-user-vhu", "65534:no-such-group-vhu",
                "4000000", "", ":0", "65534:", "-1:0", "65534:4294967295", "65534:0:0",
                "65534:+5"):
        sock = "/tmp/vhu-options-user.sock"
        out = subprocess.run([os.path.join(tools, tool), "--socket-path", sock, "--user", bad]
                             + more, capture_output=True, text=True, timeout=10)
        if out.returncode != 2 or "--user" not in out.stderr or os.path.exists(sock):
            fail("%s --user '%s': exit %d, not refused: %s" % (tool, bad, out.returncode,
                                                             out.stderr.strip()[:200]))
        else:
            print("ok: %s --user '%s' refused" % (tool, bad))
sys.exit(1 if failures else 0)
