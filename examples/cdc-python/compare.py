#!/usr/bin/env python3
"""Checks that a georep changelog folds into the region's state.

Reads the changelog topic from the beginning (cdc_table.read_table) and the
region's visible state over RESP (redis-py), and compares them; retries until
they are equal or the deadline passes (the changelog follows the state by a
moment). Exit status 0 when equal, 1 with the differences otherwise.

    python3 compare.py --brokers 127.0.0.1:19092 --redis 127.0.0.1:7001 [--deadline 60]
"""

import argparse
import sys
import time

import redis

from cdc_table import read_table


def region_state(r):
    """Every visible key of the region, in cdc_table's representation."""
    out = {}
    for key in r.scan_iter(count=1000):
        t = r.type(key)
        if t == b"string":
            v = r.get(key)
        elif t == b"hash":
            v = r.hgetall(key)
        elif t == b"set":
            v = r.smembers(key)
        elif t == b"zset":
            v = [(m, float(s)) for m, s in r.zrange(key, 0, -1, withscores=True)]
        elif t == b"list":
            v = r.lrange(key, 0, -1)
        else:  # b"none": expired since the scan
            continue
        if v is not None and v != {} and v != set() and v != []:
            out[key] = v
    return out


def differences(table, state):
    diffs = []
    got = dict(table.values)
    for k in table.truncated:
        got[k] = "(truncated)"
    for k in sorted(set(got) | set(state)):
        if got.get(k) != state.get(k):
            diffs.append("%r: changelog %r, region %r" % (k, got.get(k, "(none)"), state.get(k, "(none)")))
    return diffs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--topic", default="georep.changelog")
    ap.add_argument("--redis", required=True, help="host:port of the region's node")
    ap.add_argument("--deadline", type=float, default=60.0, help="seconds to wait for equality")
    args = ap.parse_args()
    host, port = args.redis.rsplit(":", 1)
    r = redis.Redis(host=host, port=int(port), socket_timeout=30)
    deadline = time.monotonic() + args.deadline
    while True:
        table = read_table(args.brokers, args.topic)
        diffs = differences(table, region_state(r))
        if not diffs:
            print("changelog equals the region's state: %d keys" % len(table.values))
            return 0
        if time.monotonic() > deadline:
            print("changelog differs from the region's state (%d differences):" % len(diffs), file=sys.stderr)
            for d in diffs[:20]:
                print("  " + d, file=sys.stderr)
            return 1
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
