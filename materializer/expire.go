package materializer

import (
	"context"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/georep/georep/crdt"
)

// reapInterval is how often the expiry index is scanned.
const reapInterval = 100 * time.Millisecond

// reap deletes expired keys whose winning TTL this region owns: the owner
// issues the observed DEL; other regions only hide the key on read.
func (n *Node) reap(ctx context.Context) error {
	t := time.NewTicker(reapInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if !n.writable.Load() {
			continue
		}
		keys, err := n.dueKeys(512)
		if err != nil {
			n.log.Warn().Err(err).Msg("scan expiry index")
			continue
		}
		for _, key := range keys {
			ack, err := n.Update(ctx, [][]byte{key}, func(tx *Tx) error {
				k, err := tx.Get(key)
				if err != nil || k == nil {
					return err
				}
				if _, owner := k.Expiry(); owner == n.origin && k.Expired(tx.Now()) {
					tx.Emit(key, crdt.Op{Kind: crdt.OpDelete})
				}
				return nil
			})
			if err != nil {
				continue // READONLY or Kafka trouble: next round
			}
			go func() { _ = ack.Wait(ctx) }()
		}
	}
}

// dueKeys returns up to max keys whose owned expiry has passed.
func (n *Node) dueKeys(max int) ([][]byte, error) {
	now := n.now()
	var out [][]byte
	err := n.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: []byte{prefixExpiry}})
		defer it.Close()
		for it.Rewind(); it.Valid() && len(out) < max; it.Next() {
			k := it.Item().Key()
			at := int64(beUint64(k[1:9]))
			if at >= now {
				break
			}
			v, err := it.Item().ValueCopy(nil)
			if err != nil || len(v) != 4 {
				continue
			}
			if crdt.ReplicaID(beUint32(v)) != n.origin {
				continue
			}
			out = append(out, append([]byte(nil), k[11:]...))
		}
		return nil
	})
	return out, err
}
