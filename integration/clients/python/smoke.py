"""redis-py smoke test against one georep region.

Usage: python3 smoke.py HOST PORT PREFIX
Writes PREFIX-keys, checks the replies, prints "ok". Run by
integration/clients_test.go, which then checks that the writes replicated.
"""
import sys

import redis


def check(what, got, want):
    if got != want:
        raise SystemExit(f"{what}: got {got!r}, want {want!r}")


def main():
    host, port, p = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    for protocol in (2, 3):
        r = redis.Redis(host=host, port=port, protocol=protocol, decode_responses=True)
        k = f"{p}:{protocol}"
        if protocol == 3:
            hello = r.execute_command("HELLO", "3")
            check("HELLO 3 proto", hello.get("proto"), 3)
        check("PING", r.ping(), True)
        check("SET", r.set(f"{k}:s", "v"), True)
        check("GET", r.get(f"{k}:s"), "v")
        check("GET missing", r.get(f"{k}:missing"), None)
        check("INCR", r.incr(f"{k}:n"), 1)
        check("INCRBY", r.incrby(f"{k}:n", 41), 42)
        check("INCRBYFLOAT", r.incrbyfloat(f"{k}:f", 1.5), 1.5)
        check("EXPIRE", r.expire(f"{k}:s", 1000), True)
        ttl = r.ttl(f"{k}:s")
        if not 990 <= ttl <= 1000:
            raise SystemExit(f"TTL: got {ttl}")
        check("MGET", r.mget(f"{k}:s", f"{k}:missing", f"{k}:n"), ["v", None, "42"])
        check("MSET", r.mset({f"{k}:a": "1", f"{k}:b": "2"}), True)
        pipe = r.pipeline(transaction=False)
        pipe.set(f"{k}:p", "x")
        pipe.incr(f"{k}:pn")
        pipe.incr(f"{k}:pn")
        pipe.get(f"{k}:p")
        pipe.exists(f"{k}:a", f"{k}:b")
        check("pipeline", pipe.execute(), [True, 1, 2, "x", 2])
        check("TYPE", r.type(f"{k}:n"), "string")
        check("DEL", r.delete(f"{k}:a"), 1)
        r.close()
    print("ok")


if __name__ == "__main__":
    main()
