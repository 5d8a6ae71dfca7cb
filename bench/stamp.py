#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Copies stdin to stdout line by line, each line prefixed with the Unix time it arrived (ms),
for bench/pairs.py --placed to match a sender's per-second readings with bench/xcore's probes."""
import sys
import time

for line in sys.stdin:
    sys.stdout.write("%.3f %s" % (time.time(), line))
    sys.stdout.flush()
