#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Summarises interleaved benchmark rounds: the median of the per-round ratios, per host placement.

usage: pairs.py NAME... <ROWS

Each row on stdin is "SIZE ROUND RATE..." with one rate per NAME, the last NAME being the reference
(DPDK to DPDK). Every rate of a row was measured in the same round, next to each other (the scripts
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


def main():
    names = sys.argv[1:]
    if len(names) < 2:
        sys.exit("usage: pairs.py NAME... (the last is the reference)")
    rows = {}
    for line in sys.stdin:
        f = line.split()
        if len(f) != 2 + len(names):
            continue
        rows.setdefault(f[0], []).append([float(x) for x in f[2:]])
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
        print("size %s: %d rounds%s" % (size, len(rs),
                                        "" if split is None else
                                        ", placements split at %s %.3f" % (names[ref], split)))
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
