#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/pairs.py --placed and bench/xcore: readings are put in the placement the probes of their
second saw, a second whose probes disagree is left out, and the per-placement ratios come out of
rounds with both sides in that placement. Then xcore --every prints stamped probes.
usage: bench_pairs.py SOURCE_ROOT BUILD_ROOT"""
import os
import re
import subprocess
import sys
import tempfile

src, build = sys.argv[1], sys.argv[2]
fails = 0


def check(cond, what):
    global fails
    if not cond:
        fails += 1
        print("FAIL:", what)


with tempfile.TemporaryDirectory() as d:
    probes = os.path.join(d, "probes")
    with open(probes, "w") as f:
        t = 1000.0
        while t < 1100.0:
            # near until 1050, far after; one interrupted probe (ignored) at 1020
            v = 100 if t < 1050 else 450
            f.write("%.3f %d\n" % (t, 90000 if abs(t - 1020) < 0.01 else v))
            t += 0.25
        # probes caught while the host moved the CPUs, filling the gap between the clusters
        # with steps of less than 1.4x (a widest-gap split finds none), outside every reading's
        # second
        for t, v in ((1001.1, 130), (1001.6, 170), (1002.1, 220), (1002.6, 290), (1003.1, 380)):
            f.write("%.3f %d\n" % (t, v))
    rows = []
    # rounds 1-2 near: A twice B; rounds 3-4 far: A half of B
    for r, base in ((1, 1010), (2, 1030), (3, 1060), (4, 1080)):
        a, b = (20e6, 10e6) if base < 1050 else (3e6, 6e6)
        for k in range(3):
            rows.append("64 %d A %.3f %d" % (r, base + k, a))
            rows.append("64 %d B %.3f %d" % (r, base + 5 + k, b))
    # a reading whose second straddles the change: neither placement
    rows.append("64 2 A 1050.5 999000000")
    out = subprocess.run([sys.executable, os.path.join(src, "bench/pairs.py"), "--placed", probes,
                          "A", "B"], input="\n".join(rows) + "\n", capture_output=True,
                         text=True).stdout
    print(out, end="")
    check("readings placed: 24 of 25" in out, "the straddling reading is left out")
    m = re.search(r"split at (\d+) ns", out)
    check(m and 100 < int(m.group(1)) < 450, "a split between the clusters: %r" % out[:80])
    check("size 64 near  2 rounds  median of pair ratios A/B 2.00" in out, "near ratio 2.00")
    check("size 64 far   2 rounds  median of pair ratios A/B 0.50" in out, "far ratio 0.50")
    check("near pooled: A 20.000 Mpps (6 readings), B 10.000 (6)" in out, "near pooled")

xcore = os.path.join(build, "bench/xcore")
if os.cpu_count() and os.cpu_count() >= 2:
    p = subprocess.Popen([xcore, "--every", "50"], stdout=subprocess.PIPE, text=True)
    lines = [p.stdout.readline() for _ in range(3)]
    p.kill()
    p.wait()
    ok = all(len(l.split()) == 2 and float(l.split()[1]) > 0 for l in lines)
    check(ok, "xcore --every prints 'TIME NS' lines: %r" % lines)
sys.exit(1 if fails else 0)
