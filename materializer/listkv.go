package materializer

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/georep/georep/crdt"
)

// The KVs a list is stored in (crdt.KV): point reads and writes of the
// list's records, under the list's Badger prefix (listPrefix).

// errReadOnlyList is returned by writes to a list opened for reading.
var errReadOnlyList = errors.New("materializer: list opened read-only")

// readValue reads the value of Badger key k through txn, false if there is
// none.
func readValue(txn *badger.Txn, k []byte) ([]byte, bool, error) {
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}

// txnKV reads a list from a Badger transaction (reads of applied state).
type txnKV struct {
	txn    *badger.Txn
	prefix []byte
}

func newTxnKV(txn *badger.Txn, key []byte) *txnKV {
	return &txnKV{txn: txn, prefix: listPrefix(key, crdt.ElemIDLen+2)}
}

func (kv *txnKV) full(k []byte) []byte {
	return append(kv.prefix[:len(kv.prefix):len(kv.prefix)], k...)
}

func (kv *txnKV) Get(k []byte) ([]byte, bool, error) { return readValue(kv.txn, kv.full(k)) }
func (kv *txnKV) Set(k, v []byte) error              { return errReadOnlyList }
func (kv *txnKV) Delete(k []byte) error              { return errReadOnlyList }

// cowKV is a list in the write path: the records of a snapshot, with the
// writes of the effects applied to the view kept in memory (copy on
// write). It owns its snapshot: drop discards it.
type cowKV struct {
	txn    *badger.Txn
	prefix []byte
	m      map[string]cowRec // list record key -> written value
}

type cowRec struct {
	v   []byte
	del bool
}

func newCowKV(txn *badger.Txn, key []byte) *cowKV {
	return &cowKV{txn: txn, prefix: listPrefix(key, crdt.ElemIDLen+2), m: make(map[string]cowRec)}
}

func (kv *cowKV) Get(k []byte) ([]byte, bool, error) {
	if r, ok := kv.m[string(k)]; ok {
		return r.v, !r.del, nil
	}
	return readValue(kv.txn, append(kv.prefix[:len(kv.prefix):len(kv.prefix)], k...))
}

func (kv *cowKV) Set(k, v []byte) error {
	kv.m[string(k)] = cowRec{v: v}
	return nil
}

func (kv *cowKV) Delete(k []byte) error {
	kv.m[string(k)] = cowRec{del: true}
	return nil
}

// drop discards the snapshot; the KV is not used afterwards.
func (kv *cowKV) drop() {
	if kv.txn != nil {
		kv.txn.Discard()
		kv.txn = nil
	}
}

// listBatch holds the list records an apply batch reads and writes, so
// that events on one list in a batch read its hot records (metadata, end
// leaves) once and write each record once, when the batch is flushed into
// the transaction. An event whose list part fails is rolled back (undo).
type listBatch struct {
	n     *Node
	txn   *badger.Txn
	recs  map[string]*listRec // Badger key -> record
	dirty int                 // records to write
	keys  map[string]*listKeyState
	order []*listKeyState
	// undo holds, while an event is applied, each record's state before
	// the event's first write to it (nil: not in recs).
	undo map[string]*listRec
	// grew lists the keys whose list length an event of the batch grew.
	grew [][]byte
	// tombs is the change of the partition's list tombstone count.
	tombs int64
	// spill holds the records to write after the commit when they are too
	// many for the transaction (listjournal.go).
	spill []spilled
}

type listRec struct {
	v     []byte
	del   bool // absent
	dirty bool
}

// listKeyState is a list touched by the batch.
type listKeyState struct {
	key    []byte
	kv     *batchKV
	tombs0 int64 // tombstones before the batch
	grew   bool
	stored bool // the list holds records after the batch (set by flush)
}

func (n *Node) newListBatch(txn *badger.Txn) *listBatch {
	return &listBatch{n: n, txn: txn, recs: make(map[string]*listRec), keys: make(map[string]*listKeyState)}
}

// entries estimates how many entries the batch will write.
func (b *listBatch) entries() int { return b.dirty }

func (b *listBatch) get(k string) ([]byte, bool, error) {
	if r, ok := b.recs[k]; ok {
		return r.v, !r.del, nil
	}
	v, ok, err := readValue(b.txn, []byte(k))
	if err != nil {
		return nil, false, err
	}
	b.recs[k] = &listRec{v: v, del: !ok}
	return v, ok, nil
}

func (b *listBatch) put(k string, v []byte, del bool) {
	r, ok := b.recs[k]
	if b.undo != nil {
		if _, saved := b.undo[k]; !saved {
			var prev *listRec
			if ok {
				cp := *r
				prev = &cp
			}
			b.undo[k] = prev
		}
	}
	if !ok {
		r = &listRec{}
		b.recs[k] = r
	}
	if !r.dirty {
		r.dirty = true
		b.dirty++
	}
	r.v, r.del = v, del
}

// rollback restores the records the current event changed.
func (b *listBatch) rollback() {
	for k, prev := range b.undo {
		r := b.recs[k]
		if r != nil && r.dirty {
			b.dirty--
		}
		if prev == nil {
			delete(b.recs, k)
			continue
		}
		if prev.dirty {
			b.dirty++
		}
		b.recs[k] = prev
	}
	clear(b.undo)
}

// batchKV is one list's records in a listBatch.
type batchKV struct {
	b      *listBatch
	prefix string
}

func (kv *batchKV) Get(k []byte) ([]byte, bool, error) { return kv.b.get(kv.prefix + string(k)) }

func (kv *batchKV) Set(k, v []byte) error {
	kv.b.put(kv.prefix+string(k), v, false)
	return nil
}

func (kv *batchKV) Delete(k []byte) error {
	kv.b.put(kv.prefix+string(k), nil, true)
	return nil
}

// state returns the batch's state of key's list, reading its tombstone
// count before the batch on first use.
func (b *listBatch) state(key []byte) (*listKeyState, error) {
	if ks, ok := b.keys[string(key)]; ok {
		return ks, nil
	}
	ks := &listKeyState{key: key, kv: &batchKV{b: b, prefix: string(listPrefix(key, 0))}}
	l, err := crdt.OpenList(ks.kv)
	if err != nil {
		return nil, err
	}
	ks.tombs0 = l.Tombstones()
	b.keys[string(key)] = ks
	b.order = append(b.order, ks)
	return ks, nil
}

// flush writes the batch's records into the transaction, with the
// partition's list tombstone count; others is how many entries the rest
// of the batch writes. Records too many for the transaction are spilled
// (listjournal.go).
func (b *listBatch) flush(part int32, others int) error {
	if len(b.keys) == 0 {
		return nil
	}
	for _, ks := range b.order {
		l, err := crdt.OpenList(ks.kv)
		if err != nil {
			return fmt.Errorf("list %q: %w", ks.key, err)
		}
		b.tombs += l.Tombstones() - ks.tombs0
		ks.tombs0 = l.Tombstones()
		ks.stored = !l.Empty()
		if ks.grew {
			b.grew = append(b.grew, ks.key)
		}
	}
	if b.tooBig(others) {
		if err := b.spillRecords(part); err != nil {
			return err
		}
		return b.flushTombs(part)
	}
	for k, r := range b.recs {
		if !r.dirty {
			continue
		}
		var err error
		if r.del {
			err = b.txn.Delete([]byte(k))
		} else {
			err = b.txn.Set([]byte(k), r.v)
		}
		if err != nil {
			return err
		}
	}
	return b.flushTombs(part)
}

// flushTombs adds the batch's change of list tombstones to part's count.
func (b *listBatch) flushTombs(part int32) error {
	if b.tombs == 0 {
		return nil
	}
	ck := listTombsKey(part)
	old, _, err := readValue(b.txn, ck)
	if err != nil {
		return err
	}
	var cur int64
	if len(old) == 8 {
		cur = int64(beUint64(old))
	}
	return b.txn.Set(ck, appendInt64(nil, max(cur+b.tombs, 0)))
}
