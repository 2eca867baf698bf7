package oplog

import (
	"reflect"
	"testing"

	"github.com/georep/georep/crdt"
)

// TestDecode_ListOps checks that list element ops survive the wire: the
// element ids, the anchor, the side and the sibling counter.
func TestDecode_ListOps(t *testing.T) {
	x := crdt.ElemID{Origin: 2, Seq: 7, Idx: 1}
	ev := &crdt.Event{
		Dot: crdt.Dot{Origin: 1, Seq: 9}, HLC: 5, Key: []byte("L"),
		Observed: crdt.Clock{{Origin: 2, Seq: 7}},
		Ops: []crdt.Op{
			crdt.ListRemOp(x),
			{Kind: crdt.OpLInsert, Elem: crdt.ElemID{Idx: 1}.Bytes(), Anchor: x.Bytes(), Before: true, Counter: 3, Value: []byte("v")},
			{Kind: crdt.OpLInsert, Elem: crdt.ElemID{Idx: 2}.Bytes(), Anchor: crdt.ElemID{Idx: 1}.Bytes(), Counter: 1, Value: []byte("w")},
			{Kind: crdt.OpLInsert, Elem: crdt.ElemID{Idx: 3}.Bytes(), Counter: 1},
			crdt.ListSetOp(x, []byte("s")),
		},
	}
	got, err := Decode(Encode(ev))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, ev) {
		t.Fatalf("decoded %+v\nwant    %+v", got, ev)
	}
}
