#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Summarises interleaved benchmark rounds: the median of the per-round ratios, per host placement.

usage: pairs.py NAME... <ROWS
       pairs.py --placed PROBES NAME... <SAMPLES
       pairs.py --steady RATE1 RATE2   (prints "MEAN 1" when they agree within BENCH_STEADY, 1.2x,
                                        else "MEAN 0")

Each row on stdin is "SIZE ROUND RATE... [STEADY]" with one rate per NAME, the last NAME being the
reference (DPDK to DPDK), and optionally a 1 when the round's first run, repeated at its end, gave
the same rate both times (the host kept one placement through the round), 0 when not. Every rate of a row was measured in the same round, next to each other (the scripts
alternate the order from round to round), so a row's ratios compare runs that saw the same host.

These 2-CPU machines put their two CPUs near each other or far apart, and that changes from run to
run: the reference rate then moves by 2x or more. A ratio of medians taken over all rounds mixes
placements (the medians of each side can come from different ones), so this prints, per size:
  - each rate's median, for orientation only;
  - the median of the per-round ratios RATE / reference, over all rounds;
  - the same for each placement: the rounds are split where their reference rates divide best
    into two groups (two_groups()) whose medians are BENCH_GAP (default 1.4x) or more apart, "fast"
    above it and "slow" below;
    BENCH_SPLIT (in the rates' unit) sets the split point instead. Without a split the rounds are one
    placement ("one placement").

--placed: the placement measured, not inferred. PROBES holds "UNIX_TIME NS" lines from bench/xcore
--every (the cache-line round trip between the two CPUs, a few times a second, all through the
benchmark); SAMPLES holds "SIZE ROUND NAME UNIX_TIME RATE" lines, one per reading of the sender's
per-second rate. A reading counts as "near" or "far" when every probe of the second before it
(at least two) is on one side of the split of the probe values (two_groups() with medians
BENCH_XCORE_GAP, 2.0x, apart; or BENCH_XCORE_SPLIT ns), else it is left out (the host moved the CPUs inside that second). For each
round and placement, a side's rate is the median of its readings there; the round's ratio for that
placement compares sides of the same round; the summary is the median of those per-round ratios.
"""
import math
import os
import statistics
import sys


def classify(refs):
    """Returns the rate that splits fast from slow rounds, or None for one placement."""
    if os.environ.get("BENCH_SPLIT"):
        return float(os.environ["BENCH_SPLIT"])
    return two_groups(refs, float(os.environ.get("BENCH_GAP", "1.4")))


def two_groups(values, gap):
    """The value that splits values into two placements, or None for one: the boundary that best
    separates their sorted logarithms into two groups (Otsu's between-group variance), kept when
    the groups' medians are gap or more apart. Unlike the widest gap between neighbours, a few
    values caught while the host moved the CPUs (between the clusters) do not hide the split."""
    s = sorted(math.log(v) for v in values if v > 0)
    n = len(s)
    total = sum(s)
    best, at, left = -1.0, None, 0.0
    for i in range(1, n):
        left += s[i - 1]
        if s[i] == s[i - 1]:
            continue
        m1, m2 = left / i, (total - left) / (n - i)
        var = i * (n - i) * (m1 - m2) ** 2
        if var > best:
            best, at = var, i
    if at is None:
        return None
    lo, hi = s[:at], s[at:]
    if math.exp(hi[len(hi) // 2] - lo[len(lo) // 2]) < gap:
        return None
    return math.exp((s[at - 1] + s[at]) / 2)


def steady(a, b):
    """The mean of two runs of one side, and whether they agree (the placement held)."""
    a, b = float(a), float(b)
    lim = float(os.environ.get("BENCH_STEADY", "1.2"))
    ok = min(a, b) > 0 and max(a, b) / min(a, b) <= lim
    print("%.4f %d" % ((a + b) / 2, 1 if ok else 0))


def placed(probe_file, names):
    """Per-placement medians of per-round ratios from timestamped readings (see --placed)."""
    probes = []
    with open(probe_file) as f:
        for line in f:
            p = line.split()
            if len(p) == 2:
                probes.append((float(p[0]), float(p[1])))
    probes.sort()
    # A probe that took more than 10x the fastest was interrupted: no placement from it.
    fastest = min((v for _, v in probes), default=0)
    probes = [(t, v) for t, v in probes if v <= 10 * fastest]
    if os.environ.get("BENCH_XCORE_SPLIT"):
        split = float(os.environ["BENCH_XCORE_SPLIT"])
    else:
        split = two_groups([v for _, v in probes], float(os.environ.get("BENCH_XCORE_GAP", "2.0")))
    if split is None:
        split = float("inf")  # one placement: every reading is "near"
    cells = {}  # (size, round, placement, name) -> rates
    kept = total = 0
    for line in sys.stdin:
        f = line.split()
        if len(f) != 5 or f[2] not in names:
            continue
        total += 1
        t = float(f[3])
        win = [v for pt, v in probes if t - 1.0 <= pt <= t]
        if len(win) < 2:
            continue
        if all(v < split for v in win):
            where = "near"
        elif all(v >= split for v in win):
            where = "far"
        else:
            continue
        kept += 1
        cells.setdefault((f[0], f[1], where, f[2]), []).append(float(f[4]))
    print("placement probes: %d, split at %s ns; readings placed: %d of %d" %
          (len(probes), "none" if split == float("inf") else "%.0f" % split, kept, total))
    ref = names[-1]
    sizes = sorted({k[0] for k in cells}, key=lambda x: float(x))
    for size in sizes:
        for where in ("near", "far"):
            rounds = sorted({k[1] for k in cells if k[0] == size and k[2] == where},
                            key=int)
            for name in names[:-1]:
                pr, rates = [], {n: [] for n in names}
                for r in rounds:
                    a = cells.get((size, r, where, name))
                    b = cells.get((size, r, where, ref))
                    if a and b:
                        ma, mb = statistics.median(a), statistics.median(b)
                        pr.append(ma / mb)
                        rates[name].append(ma / 1e6)
                        rates[ref].append(mb / 1e6)
                if pr:
                    print("size %s %-4s %2d rounds  median of pair ratios %s/%s %.2f (%.2f-%.2f)"
                          "  median Mpps %s %.3f, %s %.3f" %
                          (size, where, len(pr), name, ref, statistics.median(pr), min(pr),
                           max(pr), name, statistics.median(rates[name]), ref,
                           statistics.median(rates[ref])))
                # Every reading of the placement, whatever its round: more readings, but a ratio
                # of medians (runs of different rounds), so printed apart.
                pa = [x for k, v in cells.items() if k[0] == size and k[2] == where and
                      k[3] == name for x in v]
                pb = [x for k, v in cells.items() if k[0] == size and k[2] == where and
                      k[3] == ref for x in v]
                if pa and pb:
                    print("size %s %-4s pooled: %s %.3f Mpps (%d readings), %s %.3f (%d)" %
                          (size, where, name, statistics.median(pa) / 1e6, len(pa), ref,
                           statistics.median(pb) / 1e6, len(pb)))


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == "--placed":
        placed(sys.argv[2], sys.argv[3:])
        return
    if len(sys.argv) == 4 and sys.argv[1] == "--steady":
        steady(sys.argv[2], sys.argv[3])
        return
    names = sys.argv[1:]
    if len(names) < 2:
        sys.exit("usage: pairs.py NAME... (the last is the reference)")
    rows = {}
    for line in sys.stdin:
        f = line.split()
        if len(f) not in (2 + len(names), 3 + len(names)):
            continue
        # a row without the flag counts as steady
        st = len(f) == 2 + len(names) or f[2 + len(names)] == "1"
        rows.setdefault(f[0], []).append([float(x) for x in f[2:2 + len(names)]] + [st])
    ref = len(names) - 1
    for size, rs in rows.items():
        split = classify([r[ref] for r in rs])

        def by_placement(label, g):
            """g split at the reference rate: "LABEL fast" and "LABEL slow", or g alone."""
            if split is None:
                return [(label or "one placement", g)]
            pre = label + " " if label else ""
            return [(pre + "fast", [r for r in g if r[ref] >= split]),
                    (pre + "slow", [r for r in g if r[ref] < split])]

        groups = [("all", rs)] + by_placement("", rs)
        st = [r for r in rs if r[-1]]
        if len(st) < len(rs):
            groups += by_placement("steady", st)
        print("size %s: %d rounds%s%s" % (size, len(rs),
                                          "" if split is None else
                                          ", placements split at %s %.3f" % (names[ref], split),
                                          "" if len(st) == len(rs) else
                                          ", %d steady" % len(st)))
        for label, g in groups:
            if not g:
                continue
            meds = ["%s %.3f" % (names[i], statistics.median(r[i] for r in g))
                    for i in range(len(names))]
            ratios = []
            for i in range(ref):
                pr = [r[i] / r[ref] for r in g if r[ref] > 0]
                if pr:
                    ratios.append("%s/%s %.2f (%.2f-%.2f)" % (names[i], names[ref],
                                                             statistics.median(pr), min(pr), max(pr)))
            print("  %-14s %2d rounds  median of pair ratios: %s" % (label, len(g), ", ".join(ratios)))
            print("  %-14s           median rates: %s" % ("", ", ".join(meds)))


if __name__ == "__main__":
    main()
