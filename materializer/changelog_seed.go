package materializer

import (
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/georep/georep/oplog"
)

// The first time a node publishes to a changelog topic, it publishes every
// key it holds (op "r", Debezium's snapshot read), so that a consumer
// reading the topic from the beginning gets the whole state and not only
// what changed after the changelog was turned on. It does so by marking
// every key (a mark with markFlagSnapshot, unless the key has a mark
// already) and then recording that the topic is seeded:
//
//	'C' topic -> (empty): the changelog to topic has been seeded
//
// A crash while seeding seeds again after the restart (keys published in
// between are published twice: at least once). A node started without the
// changelog forgets the seeded records (forgetChangelogSeeds): the changes
// it applies are not marked, so turning the changelog on again must
// publish the whole state again.
const prefixChangelogSeeded = 'C'

const markFlagSnapshot = 2 // a mark of the initial snapshot, not of a change

// seedChunk is how many keys one seeding transaction marks.
const seedChunk = 1024

func seededKey(topic string) []byte { return append([]byte{prefixChangelogSeeded}, topic...) }

// seed marks every stored key unless the topic was seeded before.
func (c *changelog) seed(ctx context.Context) error {
	n := c.n
	done := false
	err := n.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(seededKey(c.topic))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		done = err == nil
		return err
	})
	if err != nil || done {
		return err
	}
	var after []byte
	var marked int64
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var keys [][]byte
		err := n.db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixMeta}})
			defer it.Close()
			start := []byte{prefixMeta}
			if after != nil {
				start = append(metaKey(after), 0)
			}
			for it.Seek(start); it.Valid() && len(keys) < seedChunk; it.Next() {
				keys = append(keys, redisKeyOfMeta(it.Item().KeyCopy(nil)))
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("seed changelog: %w", err)
		}
		if len(keys) == 0 {
			break
		}
		after = keys[len(keys)-1]
		byPart := make(map[int32][][]byte)
		for _, k := range keys {
			pi := oplog.PartitionOfSlot(oplog.HashSlot(k), n.cfg.Partitions)
			byPart[pi] = append(byPart[pi], k)
		}
		for pi, ks := range byPart {
			m, err := c.markSnapshot(pi, ks)
			if err != nil {
				return fmt.Errorf("seed changelog: %w", err)
			}
			marked += m
		}
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	if err := n.db.Update(func(txn *badger.Txn) error { return txn.Set(seededKey(c.topic), nil) }); err != nil {
		return fmt.Errorf("seed changelog: %w", err)
	}
	n.log.Info().Str("topic", c.topic).Int64("keys", marked).Msg("changelog: publishing the state once (op r), then changes")
	return nil
}

// markSnapshot gives keys of partition pi a snapshot mark unless they have
// a mark; under the partition's changelog lock, so that a concurrent
// apply's mark is either seen (kept) or written after (wins).
func (c *changelog) markSnapshot(pi int32, keys [][]byte) (int64, error) {
	mu := &c.locks[pi]
	mu.Lock()
	defer mu.Unlock()
	txn := c.n.db.NewTransaction(true)
	defer txn.Discard()
	v := clMark{existed: true, snapshot: true}.marshal()
	var marked int64
	for _, k := range keys {
		mk := changelogKey(k)
		_, err := txn.Get(mk)
		if err == nil {
			continue
		}
		if !errors.Is(err, badger.ErrKeyNotFound) {
			return marked, err
		}
		if err := txn.Set(mk, v); err != nil {
			return marked, err
		}
		marked++
	}
	return marked, txn.Commit()
}

// forgetChangelogSeeds deletes the seeded records: called when the node
// runs without the changelog.
func (n *Node) forgetChangelogSeeds() error {
	var keys [][]byte
	err := n.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixChangelogSeeded}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		return nil
	})
	if err != nil || len(keys) == 0 {
		return err
	}
	err = n.db.Update(func(txn *badger.Txn) error {
		for _, k := range keys {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("forget the changelog's initial snapshot: %w", err)
	}
	n.log.Info().Msg("running without the changelog: turning it on again publishes the whole state again")
	return nil
}
