package materializer

import (
	"encoding/binary"

	"github.com/georep/georep/oplog"
)

// Badger key layout. Every key starts with a one-byte table prefix.
//
//	'm' slot(2) rediskey          -> crdt.Key encoding
//	'o' partition(4) topic        -> next offset to consume (8)
//	'w' partition(4) origin(4)    -> watermark: seq(8) hlc(8)
//	'x' at(8) slot(2) rediskey    -> expiry index: owner origin(4)
//	'f' partition(4)              -> retained FLUSHALL context (crdt.Clock)
//	'e' 'z' 'p' 't' slot(2) keylen(4) key ... -> collection elements, sorted-set
//	                                 score index, pending resets, tombstone
//	                                 index (elements.go)
//	'L' slot(2) keylen(4) key record -> list records; 'c' partition(4) -> list
//	                                 tombstones; 'J' partition(4) n(4) -> list
//	                                 journal (lists.go, listjournal.go)
//	'd' slot(2) rediskey          -> changelog dirty mark (changelog.go)
//	'C' topic                     -> changelog topic seeded (changelog_seed.go)
const (
	prefixMeta      = 'm'
	prefixOffset    = 'o'
	prefixWatermark = 'w'
	prefixExpiry    = 'x'
)

func metaKey(key []byte) []byte { return appendMetaKey(make([]byte, 0, 3+len(key)), key) }

// appendMetaKey appends key's meta entry key to b.
func appendMetaKey(b, key []byte) []byte {
	b = append(b, prefixMeta)
	b = binary.BigEndian.AppendUint16(b, oplog.HashSlot(key))
	return append(b, key...)
}

// redisKeyOfMeta returns the Redis key of a meta entry's Badger key.
func redisKeyOfMeta(k []byte) []byte { return k[3:] }

func offsetKey(partition int32, topic string) []byte {
	b := []byte{prefixOffset}
	b = binary.BigEndian.AppendUint32(b, uint32(partition))
	return append(b, topic...)
}

func watermarkKey(partition int32, origin uint32) []byte {
	b := []byte{prefixWatermark}
	b = binary.BigEndian.AppendUint32(b, uint32(partition))
	return binary.BigEndian.AppendUint32(b, origin)
}

func expiryKey(at int64, key []byte) []byte {
	b := make([]byte, 0, 11+len(key))
	b = append(b, prefixExpiry)
	b = binary.BigEndian.AppendUint64(b, uint64(at))
	b = binary.BigEndian.AppendUint16(b, oplog.HashSlot(key))
	return append(b, key...)
}

// partitionRange returns the first meta key of partition p's slots and the
// first meta key after them.
func partitionRange(p, n int32) (lo, hi []byte) {
	first := (int64(p)*oplog.SlotCount + int64(n) - 1) / int64(n)
	last := (int64(p+1)*oplog.SlotCount + int64(n) - 1) / int64(n)
	lo = binary.BigEndian.AppendUint16([]byte{prefixMeta}, uint16(first))
	if last >= oplog.SlotCount {
		return lo, []byte{prefixMeta + 1}
	}
	return lo, binary.BigEndian.AppendUint16([]byte{prefixMeta}, uint16(last))
}
