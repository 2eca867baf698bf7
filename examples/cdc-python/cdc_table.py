#!/usr/bin/env python3
"""Keep a table of georep's current values from its changelog topic.

Reads a georep changelog topic (docs/cdc.md) from the beginning with
confluent-kafka and keeps ``table``: Redis key (bytes) -> value, where a value
is ``bytes`` for a string, ``dict[bytes, bytes]`` for a hash, ``set[bytes]``
for a set, ``list[tuple[bytes, float]]`` (by score) for a sorted set and
``list[bytes]`` for a list. A delete, and the tombstone after it, remove the
key.

    python3 cdc_table.py --brokers 127.0.0.1:19092            # print changes as they come
    python3 cdc_table.py --brokers 127.0.0.1:19092 --dump     # read to the end, print the table as JSON

--dump reads up to the topic's end offsets as of the start and exits: what the
test in scripts/kafka/test.sh compares with the region's state.
"""

import argparse
import base64
import json
import sys
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition


def decode_value(after):
    """Turns a changelog record's "after" into a Python value."""
    if after["encoding"] == "base64":
        b = base64.b64decode
    else:
        b = lambda s: s.encode("utf-8")
    v = after["value"]
    t = after["type"]
    if t == "string":
        return b(v)
    if t == "hash":
        return {b(f): b(x) for f, x in v.items()}
    if t == "set":
        return {b(m) for m in v}
    if t == "zset":
        return [(b(m), float(s)) for m, s in v]  # "inf" / "-inf" parse too
    if t == "list":
        return [b(x) for x in v]
    raise ValueError("unknown type %r" % t)


class Table:
    """The current value of every key, folded from changelog records."""

    def __init__(self):
        self.values = {}
        self.truncated = set()  # keys whose last record carried no value

    def apply(self, key, value):
        """Folds one record (key and value bytes; value None for a tombstone).
        Returns the record's op, or None for a tombstone."""
        if value is None:
            self.values.pop(key, None)
            self.truncated.discard(key)
            return None
        rec = json.loads(value)
        if rec["op"] == "d":
            self.values.pop(key, None)
            self.truncated.discard(key)
        elif rec.get("truncated"):
            # Too large for one record: read the key from georep if needed.
            self.values.pop(key, None)
            self.truncated.add(key)
        else:
            self.values[key] = decode_value(rec["after"])
            self.truncated.discard(key)
        return rec["op"]


def consumer(brokers, group):
    return Consumer({
        "bootstrap.servers": brokers,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "enable.metrics.push": False,  # no client telemetry (KIP-714)
    })


def end_offsets(c, topic, timeout):
    md = c.list_topics(topic, timeout=timeout)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        raise KafkaException(t.error if t is not None else "topic %s not found" % topic)
    ends = {}
    for p in t.partitions:
        _, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
        ends[p] = high
    return ends


def read_table(brokers, topic, timeout=30.0, group=""):
    """Reads the topic from the beginning up to its end offsets as of the
    call and returns the Table."""
    c = consumer(brokers, group or "cdc-python-" + uuid.uuid4().hex)
    try:
        ends = end_offsets(c, topic, timeout)
        c.assign([TopicPartition(topic, p, 0) for p in ends])  # from the beginning
        remaining = {p for p, end in ends.items() if end > 0}
        table = Table()
        while remaining:
            msg = c.poll(timeout)
            if msg is None:
                raise TimeoutError("partitions %s not read to their end" % sorted(remaining))
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    remaining.discard(msg.partition())
                    continue
                raise KafkaException(msg.error())
            table.apply(msg.key(), msg.value())
            if msg.offset() + 1 >= ends[msg.partition()]:
                remaining.discard(msg.partition())
    finally:
        c.close()
    return table


def dump(args):
    """Reads the topic up to its current end and prints the table as JSON."""
    table = read_table(args.brokers, args.topic, args.timeout, args.group)
    json.dump(to_json(table), sys.stdout, sort_keys=True)
    print()


def to_json(table):
    """The table with bytes as str (surrogate escapes for non-UTF-8)."""
    s = lambda b: b.decode("utf-8", "surrogateescape")
    out = {}
    for k, v in table.values.items():
        if isinstance(v, bytes):
            j = ["string", s(v)]
        elif isinstance(v, dict):
            j = ["hash", {s(f): s(x) for f, x in v.items()}]
        elif isinstance(v, set):
            j = ["set", sorted(s(m) for m in v)]
        elif v and isinstance(v[0], tuple):
            j = ["zset", [[s(m), sc] for m, sc in v]]
        else:
            j = ["list", [s(x) for x in v]]
        out[s(k)] = j
    for k in table.truncated:
        out[s(k)] = ["truncated", None]
    return out


def follow(args):
    """Prints each change and keeps the table until interrupted."""
    c = consumer(args.brokers, args.group or "cdc-python-" + uuid.uuid4().hex)
    c.subscribe([args.topic])
    table = Table()
    try:
        while True:
            msg = c.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    print("error:", msg.error(), file=sys.stderr)
                continue
            op = table.apply(msg.key(), msg.value())
            if op is not None:
                key = msg.key().decode("utf-8", "backslashreplace")
                print(op, key, table.values.get(msg.key(), "(gone)"), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--brokers", default="127.0.0.1:19092", help="the region's Kafka bootstrap servers")
    ap.add_argument("--topic", default="georep.changelog")
    ap.add_argument("--group", default="", help="consumer group (default: a new one, so reading starts at the beginning)")
    ap.add_argument("--dump", action="store_true", help="read to the current end, print the table as JSON, exit")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for Kafka (--dump)")
    args = ap.parse_args()
    if args.dump:
        dump(args)
    else:
        follow(args)


if __name__ == "__main__":
    main()
