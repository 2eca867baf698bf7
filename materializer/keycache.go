package materializer

import "github.com/georep/georep/crdt"

// keyCache keeps, for one partition's apply worker, the decoded state of
// the keys it applied recently, so that the next batch touching a key
// folds into it instead of reading and decoding it from Badger again (a
// replay writes each key many times; a live region applies its peers'
// writes to its hot keys).
//
// Only the partition's worker goroutine uses it, so it has no lock.
//
// Invariant: an entry is exactly the key's state as committed to Badger
// (the `m` entry, or absent for an empty Key). The apply loop keeps it so:
// it puts entries only after its batch commits and clears the cache when
// a batch fails (the entries may then hold effects that were not
// committed). The only other writer of key states is the tombstone sweep
// (sweepEntry), on the same goroutine, which drops the entries it rewrites.
// Any new writer of `m` entries must drop the key here too. Nothing else
// may hold on to a cached *crdt.Key: the next batch mutates it in place.
//
// The bound is in bytes (encoded size plus an allowance for the decoded
// form), over two generations: a lookup promotes an entry of the old
// generation into the current one, and when the current one is full it
// becomes the old one, dropping what the old one held.
type keyCache struct {
	genBytes int64 // bytes per generation; 0 disables the cache
	cur, old map[string]*keyCacheEntry
	curBytes int64
	// complete is set while the cache holds every key of the partition's
	// state: a replay into an empty state that has evicted nothing yet. A
	// key it does not hold is then known to be absent.
	complete bool
}

// keyCacheEntry is a cached state; the apply loop updates it in place
// after its batch commits.
type keyCacheEntry struct {
	k    *crdt.Key
	size int64
}

// keyCacheOverhead is added to a state's encoded size: the map entry, the
// Key struct and its slice headers.
const keyCacheOverhead = 320

func newKeyCache(bytes int64) *keyCache {
	if bytes <= 0 {
		return &keyCache{}
	}
	return &keyCache{genBytes: bytes / 2, cur: map[string]*keyCacheEntry{}, old: map[string]*keyCacheEntry{}}
}

// setComplete declares that the partition's state is empty, so that a key
// the cache does not hold is absent until the cache first forgets one.
func (c *keyCache) setComplete() { c.complete = c.genBytes > 0 }

// get returns key's cached entry, or nil.
func (c *keyCache) get(key []byte) *keyCacheEntry {
	if c.genBytes == 0 {
		return nil
	}
	if e, ok := c.cur[string(key)]; ok {
		return e
	}
	e, ok := c.old[string(key)]
	if !ok {
		return nil
	}
	delete(c.old, string(key))
	c.insert(string(key), e)
	return e
}

// size is what an entry of a key with an encoded state of encoded bytes
// counts.
func entrySize(key string, encoded int) int64 {
	return int64(encoded) + int64(len(key)) + keyCacheOverhead
}

// put records key's committed state; encoded is the size of its `m` entry
// (0 when absent).
func (c *keyCache) put(key string, k *crdt.Key, encoded int) {
	if c.genBytes == 0 {
		return
	}
	if e, ok := c.cur[key]; ok {
		c.update(e, key, k, encoded)
		return
	}
	delete(c.old, key)
	c.insert(key, &keyCacheEntry{k: k, size: entrySize(key, encoded)})
}

// update replaces the state of an entry get returned. (If the entry has
// moved to the old generation meanwhile, the current one's byte count is
// off by the difference until the next rotation.)
func (c *keyCache) update(e *keyCacheEntry, key string, k *crdt.Key, encoded int) {
	size := entrySize(key, encoded)
	c.curBytes += size - e.size
	e.k, e.size = k, size
}

func (c *keyCache) insert(key string, e *keyCacheEntry) {
	if c.curBytes+e.size > c.genBytes && len(c.cur) > 0 {
		if len(c.old) > 0 {
			c.complete = false
		}
		c.old, c.cur, c.curBytes = c.cur, make(map[string]*keyCacheEntry, len(c.cur)), 0
	}
	c.cur[key] = e
	c.curBytes += e.size
}

// drop forgets key (its stored state was rewritten by someone else than
// the apply loop).
func (c *keyCache) drop(key []byte) {
	if c.genBytes == 0 {
		return
	}
	c.complete = false
	if e, ok := c.cur[string(key)]; ok {
		c.curBytes -= e.size
		delete(c.cur, string(key))
	}
	delete(c.old, string(key))
}

// clear forgets everything.
func (c *keyCache) clear() {
	if c.genBytes == 0 {
		return
	}
	c.cur, c.old, c.curBytes, c.complete = map[string]*keyCacheEntry{}, map[string]*keyCacheEntry{}, 0, false
}

// len is the number of cached keys.
func (c *keyCache) len() int { return len(c.cur) + len(c.old) }
