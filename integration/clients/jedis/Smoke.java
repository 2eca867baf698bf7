// Jedis smoke test against one georep region.
//
// Usage: java -cp 'target/lib/*' Smoke.java HOST PORT PREFIX
// Writes PREFIX-keys, checks the replies, prints "ok". Run by
// integration/clients_test.go, which then checks that the writes replicated.

import java.util.Arrays;
import java.util.List;
import java.util.Objects;

import redis.clients.jedis.DefaultJedisClientConfig;
import redis.clients.jedis.HostAndPort;
import redis.clients.jedis.Jedis;
import redis.clients.jedis.Pipeline;
import redis.clients.jedis.RedisProtocol;
import redis.clients.jedis.Response;

public class Smoke {
    static void check(String what, Object got, Object want) {
        if (!Objects.equals(got, want)) {
            System.err.println(what + ": got " + got + ", want " + want);
            System.exit(1);
        }
    }

    public static void main(String[] args) {
        String host = args[0];
        int port = Integer.parseInt(args[1]);
        String p = args[2];
        for (RedisProtocol proto : new RedisProtocol[] {RedisProtocol.RESP2, RedisProtocol.RESP3}) {
            String k = p + ":java" + proto.version();
            try (Jedis r = new Jedis(new HostAndPort(host, port),
                    DefaultJedisClientConfig.builder().protocol(proto).build())) {
                check("PING", r.ping(), "PONG");
                check("SET", r.set(k + ":s", "v"), "OK");
                check("GET", r.get(k + ":s"), "v");
                check("GET missing", r.get(k + ":missing"), null);
                check("INCR", r.incr(k + ":n"), 1L);
                check("INCRBY", r.incrBy(k + ":n", 41), 42L);
                check("INCRBYFLOAT", r.incrByFloat(k + ":f", 1.5), 1.5);
                check("EXPIRE", r.expire(k + ":s", 1000), 1L);
                long ttl = r.ttl(k + ":s");
                check("TTL in 990..1000", ttl >= 990 && ttl <= 1000, true);
                check("MGET", r.mget(k + ":s", k + ":missing", k + ":n"), Arrays.asList("v", null, "42"));
                check("MSET", r.mset(k + ":a", "1", k + ":b", "2"), "OK");
                Pipeline pl = r.pipelined();
                Response<String> set = pl.set(k + ":p", "x");
                Response<Long> i1 = pl.incr(k + ":pn");
                Response<Long> i2 = pl.incr(k + ":pn");
                Response<String> get = pl.get(k + ":p");
                Response<Long> ex = pl.exists(k + ":a", k + ":b");
                pl.sync();
                check("pipeline", List.of(set.get(), i1.get(), i2.get(), get.get(), ex.get()),
                        List.of("OK", 1L, 2L, "x", 2L));
                check("TYPE", r.type(k + ":n"), "string");
                check("DEL", r.del(k + ":a"), 1L);
            }
        }
        System.out.println("ok");
    }
}
