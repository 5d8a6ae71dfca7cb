#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Summarises interleaved benchmark rounds: the median of the per-round ratios, per host placement.

usage: pairs.py NAME... <ROWS
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
  - the same for each placement: the rounds are split at the widest gap between the sorted
    reference rates when it is at least BENCH_GAP (default 1.4x), "fast" above it and "slow" below;
    BENCH_SPLIT (in the rates' unit) sets the split point instead. Without a split the rounds are one
    placement ("one placement").
"""
import os
import statistics
import sys


def classify(refs):
    """Returns the rate that splits fast from slow rounds, or None for one placement."""
    if os.environ.get("BENCH_SPLIT"):
        return float(os.environ["BENCH_SPLIT"])
    gap = float(os.environ.get("BENCH_GAP", "1.4"))
    s = sorted(r for r in refs if r > 0)
    best, at = 1.0, None
    for lo, hi in zip(s, s[1:]):
        if hi / lo > best:
            best, at = hi / lo, (lo * hi) ** 0.5
    return at if best >= gap else None


def steady(a, b):
    """The mean of two runs of one side, and whether they agree (the placement held)."""
    a, b = float(a), float(b)
    lim = float(os.environ.get("BENCH_STEADY", "1.2"))
    ok = min(a, b) > 0 and max(a, b) / min(a, b) <= lim
    print("%.4f %d" % ((a + b) / 2, 1 if ok else 0))


def main():
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
        groups = [("all", rs)]
        if split is not None:
            groups += [
                ("fast", [r for r in rs if r[ref] >= split]),
                ("slow", [r for r in rs if r[ref] < split]),
            ]
        else:
            groups += [("one placement", rs)]
        st = [r for r in rs if r[-1]]
        if len(st) < len(rs):
            if split is not None:
                groups += [
                    ("steady fast", [r for r in st if r[ref] >= split]),
                    ("steady slow", [r for r in st if r[ref] < split]),
                ]
            else:
                groups += [("steady", st)]
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
