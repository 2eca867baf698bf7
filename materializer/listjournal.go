package materializer

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/dgraph-io/badger/v4"

	"github.com/georep/georep/crdt"
)

// Big list writes. One event may write more list records than a Badger
// transaction holds: a DEL (or expiry, type change) of a list with tens of
// thousands of elements rewrites each of them, an RPUSH of many values
// creates as many. Such a batch is committed in two steps:
//
//  1. the batch's transaction stores the list records to write as journal
//     entries ('J' partition(4) n(4), values of up to 32 MB, which Badger
//     keeps in its value log so they do not count against the transaction's
//     limits) together with everything else (key states, offsets), so the
//     batch is still all or nothing;
//  2. right after the commit, the partition's worker writes the records in
//     transactions of bounded size and deletes the journal; a crash in
//     between is finished by the worker when it starts again.
//
// Between 1 and 2 a reader may see the key's new state with the list's
// records partly written; the worker holds the partition's write lock
// meanwhile, so no write plans against them. (In-memory state, which a
// crash loses anyway, skips the journal.)
const (
	prefixListJournal = 'J'
	listJournalChunk  = 32 << 20
)

func listJournalKey(part int32, i uint32) []byte {
	b := binary.BigEndian.AppendUint32([]byte{prefixListJournal}, uint32(part))
	return binary.BigEndian.AppendUint32(b, i)
}

// spilled is a list record written after the commit.
type spilled struct {
	k, v []byte
	del  bool
}

// tooBig reports whether the batch's list records, with others entries
// of the rest of the batch, would exceed half of Badger's transaction
// limits.
func (b *listBatch) tooBig(others int) bool {
	count, size := int64(others), int64(0)
	for k, r := range b.recs {
		if r.dirty {
			count++
			size += int64(len(k)+len(r.v)) + 16
		}
	}
	if m := b.n.listSpill.Load(); m > 0 {
		return count > m
	}
	return count > b.n.db.MaxBatchCount()/2 || size > b.n.db.MaxBatchSize()/2
}

// spillRecords moves the batch's dirty records out of the transaction: into
// journal entries of part (on disk), and into b.spill for afterCommit.
func (b *listBatch) spillRecords(part int32) error {
	for k, r := range b.recs {
		if r.dirty {
			b.spill = append(b.spill, spilled{k: []byte(k), v: r.v, del: r.del})
		}
	}
	sort.Slice(b.spill, func(i, j int) bool { return string(b.spill[i].k) < string(b.spill[j].k) })
	if b.n.db.Opts().InMemory {
		return nil
	}
	var blob []byte
	n := uint32(0)
	put := func() error {
		err := b.txn.Set(listJournalKey(part, n), blob)
		n++
		blob = nil
		return err
	}
	for _, s := range b.spill {
		blob = appendSpilled(blob, s)
		if len(blob) >= listJournalChunk {
			if err := put(); err != nil {
				return err
			}
		}
	}
	if len(blob) > 0 {
		return put()
	}
	return nil
}

func appendSpilled(b []byte, s spilled) []byte {
	b = binary.AppendUvarint(b, uint64(len(s.k)))
	b = append(b, s.k...)
	if s.del {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendUvarint(b, uint64(len(s.v)))
	return append(b, s.v...)
}

func parseSpilled(b []byte) ([]spilled, error) {
	var out []spilled
	for len(b) > 0 {
		kl, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < kl+1 {
			return nil, crdt.ErrCorrupt
		}
		s := spilled{k: b[n : n+int(kl)]}
		b = b[n+int(kl):]
		op := b[0]
		b = b[1:]
		if op == 0 {
			s.del = true
		} else {
			vl, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < vl {
				return nil, crdt.ErrCorrupt
			}
			s.v = b[n : n+int(vl)]
			b = b[n+int(vl):]
		}
		out = append(out, s)
	}
	return out, nil
}

// afterCommit writes the records the batch spilled, holding the
// partition's write lock, and drops the journal.
func (b *listBatch) afterCommit(p *partition) error {
	if b.spill == nil {
		return nil
	}
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	if err := b.n.writeSpilled(b.spill); err != nil {
		return err
	}
	b.spill = nil
	return b.n.dropListJournal(p.id)
}

// writeSpilled writes records in transactions of bounded size.
func (n *Node) writeSpilled(recs []spilled) error {
	maxCount, maxSize := n.db.MaxBatchCount()/2, n.db.MaxBatchSize()/2
	for len(recs) > 0 {
		txn := n.db.NewTransaction(true)
		var count, size int64
		i := 0
		for ; i < len(recs) && count < maxCount && size < maxSize; i++ {
			s := recs[i]
			var err error
			if s.del {
				err = txn.Delete(s.k)
			} else {
				err = txn.Set(s.k, s.v)
			}
			if err != nil {
				txn.Discard()
				return fmt.Errorf("write list records: %w", err)
			}
			count++
			size += int64(len(s.k)+len(s.v)) + 16
		}
		if err := txn.Commit(); err != nil {
			return fmt.Errorf("write list records: %w", err)
		}
		recs = recs[i:]
	}
	return nil
}

func (n *Node) dropListJournal(part int32) error {
	return n.db.Update(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: listJournalKey(part, 0)[:5]})
		defer it.Close()
		var keys [][]byte
		for it.Rewind(); it.Valid(); it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		for _, k := range keys {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// finishListJournal writes the list records of partition p's journal, left
// by a crash between a batch's commit and their writing (see above).
func (n *Node) finishListJournal(p *partition) error {
	var blobs [][]byte
	err := n.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: listJournalKey(p.id, 0)[:5]})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			blobs = append(blobs, v)
		}
		return nil
	})
	if err != nil || len(blobs) == 0 {
		return err
	}
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	for _, blob := range blobs {
		recs, err := parseSpilled(blob)
		if err != nil {
			return fmt.Errorf("list journal of partition %d: %w", p.id, err)
		}
		if err := n.writeSpilled(recs); err != nil {
			return err
		}
	}
	n.log.Info().Int32("partition", p.id).Msg("finished writing the list records of a batch committed before a stop")
	return n.dropListJournal(p.id)
}
