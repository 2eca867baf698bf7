// ioredis smoke test against one georep region.
//
// Usage: node smoke.js HOST PORT PREFIX
// Writes PREFIX-keys, checks the replies, prints "ok". Run by
// integration/clients_test.go, which then checks that the writes replicated.
'use strict';
const assert = require('node:assert/strict');
const Redis = require('ioredis');

async function main() {
  const [host, port, p] = process.argv.slice(2);
  const r = new Redis({ host, port: Number(port), lazyConnect: true, maxRetriesPerRequest: 0 });
  await r.connect();
  try {
    const k = `${p}:js`;
    assert.equal(await r.ping(), 'PONG');
    assert.equal(await r.set(`${k}:s`, 'v'), 'OK');
    assert.equal(await r.get(`${k}:s`), 'v');
    assert.equal(await r.get(`${k}:missing`), null);
    assert.equal(await r.incr(`${k}:n`), 1);
    assert.equal(await r.incrby(`${k}:n`, 41), 42);
    assert.equal(await r.incrbyfloat(`${k}:f`, '1.5'), '1.5');
    assert.equal(await r.expire(`${k}:s`, 1000), 1);
    const ttl = await r.ttl(`${k}:s`);
    assert.ok(ttl >= 990 && ttl <= 1000, `TTL ${ttl}`);
    assert.deepEqual(await r.mget(`${k}:s`, `${k}:missing`, `${k}:n`), ['v', null, '42']);
    assert.equal(await r.mset(`${k}:a`, '1', `${k}:b`, '2'), 'OK');
    const res = await r.pipeline()
      .set(`${k}:p`, 'x')
      .incr(`${k}:pn`)
      .incr(`${k}:pn`)
      .get(`${k}:p`)
      .exists(`${k}:a`, `${k}:b`)
      .exec();
    assert.deepEqual(res, [[null, 'OK'], [null, 1], [null, 2], [null, 'x'], [null, 2]]);
    assert.equal(await r.type(`${k}:n`), 'string');
    assert.equal(await r.del(`${k}:a`), 1);
    await assert.rejects(r.incr(`${k}:s`), /not an integer/);
  } finally {
    r.disconnect();
  }
  console.log('ok');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
