package crdt

import (
	"encoding/binary"
	"errors"
)

// ErrCorrupt is returned when encoded state does not decode.
var ErrCorrupt = errors.New("crdt: corrupt state encoding")

const keyVersion = 1

// Marshal appends k's deterministic binary encoding to b.
func (k *Key) Marshal(b []byte) []byte {
	b = append(b, keyVersion)
	b = putClock(b, k.VV)
	b = putClock(b, k.Del)
	b = binary.AppendUvarint(b, uint64(len(k.TypeDel)))
	for _, tt := range k.TypeDel {
		b = append(b, byte(tt.Type))
		b = putClock(b, tt.Ctx)
	}
	b = binary.AppendUvarint(b, uint64(len(k.TTLs)))
	for _, t := range k.TTLs {
		b = putDot(b, t.Dot)
		b = binary.AppendUvarint(b, uint64(t.HLC))
		b = binary.AppendVarint(b, t.At)
	}
	b = putClock(b, k.TTLTomb)
	b = k.Str.marshal(b)
	b = binary.AppendUvarint(b, uint64(len(k.Writes)))
	for _, w := range k.Writes {
		b = append(b, byte(w.Type))
		b = putDot(b, Dot{w.Origin, w.Seq})
		b = binary.AppendUvarint(b, uint64(w.HLC))
	}
	for t, n := range k.Lens {
		if n != 0 {
			b = append(b, byte(t))
			b = binary.AppendVarint(b, n)
		}
	}
	b = append(b, 0xff)
	return b
}

func (c *Cell) marshal(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(c.Regs)))
	for _, r := range c.Regs {
		b = putDot(b, r.Dot)
		b = binary.AppendUvarint(b, uint64(r.HLC))
		b = putBytes(b, r.Value)
	}
	b = putShares(b, c.Shares)
	b = putShares(b, c.Bases)
	return putClock(b, c.Tomb)
}

// UnmarshalKey decodes a Key encoded by Marshal. The result does not alias b.
func UnmarshalKey(b []byte) (*Key, error) {
	d := decoder{b: b}
	if d.byte() != keyVersion {
		return nil, ErrCorrupt
	}
	k := &Key{}
	k.VV = d.clock()
	k.Del = d.clock()
	for n := d.count(); n > 0 && d.err == nil; n-- {
		t := d.typ()
		k.TypeDel = append(k.TypeDel, TypeTomb{Type: t, Ctx: d.clock()})
	}
	for n := d.count(); n > 0 && d.err == nil; n-- {
		k.TTLs = append(k.TTLs, TTL{Dot: d.dot(), HLC: HLC(d.uvarint()), At: d.varint()})
	}
	k.TTLTomb = d.clock()
	k.Str = d.cell()
	for n := d.count(); n > 0 && d.err == nil; n-- {
		t := d.typ()
		dt := d.dot()
		k.Writes = append(k.Writes, TypeWrite{Type: t, Origin: dt.Origin, Seq: dt.Seq, HLC: HLC(d.uvarint())})
	}
	for d.err == nil {
		t := d.byte()
		if t == 0xff {
			break
		}
		if int(t) >= numTypes {
			d.fail()
			break
		}
		k.Lens[t] = d.varint()
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, ErrCorrupt
	}
	return k, nil
}

// MarshalCell appends c's encoding to b (collections store cells per field).
func MarshalCell(b []byte, c *Cell) []byte { return c.marshal(b) }

// UnmarshalCell decodes a Cell encoded by MarshalCell.
func UnmarshalCell(b []byte) (Cell, error) {
	d := decoder{b: b}
	c := d.cell()
	if d.err != nil || len(d.b) != 0 {
		return Cell{}, ErrCorrupt
	}
	return c, nil
}

func putDot(b []byte, d Dot) []byte {
	b = binary.AppendUvarint(b, uint64(d.Origin))
	return binary.AppendUvarint(b, d.Seq)
}

func putClock(b []byte, c Clock) []byte {
	b = binary.AppendUvarint(b, uint64(len(c)))
	for _, d := range c {
		b = putDot(b, d)
	}
	return b
}

func putBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func putShares(b []byte, ss []Share) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = binary.AppendUvarint(b, uint64(s.Origin))
		b = binary.AppendUvarint(b, s.Start)
		b = binary.AppendUvarint(b, s.Seq)
		b = binary.AppendUvarint(b, uint64(s.HLC))
		b = binary.AppendVarint(b, s.Int)
		b = putFloat(b, s.Float)
		b = binary.AppendUvarint(b, uint64(s.By))
	}
	return b
}

func putFloat(b []byte, f Float) []byte {
	b = binary.AppendUvarint(b, f.Mant)
	b = binary.AppendVarint(b, int64(f.Exp))
	if f.Neg {
		return append(b, 1)
	}
	return append(b, 0)
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() { d.err = ErrCorrupt; d.b = nil }

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// typ reads a Type; an unknown one is corrupt (Key indexes Lens by type).
func (d *decoder) typ() Type {
	t := Type(d.byte())
	if int(t) >= numTypes {
		d.fail()
	}
	return t
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length and bounds it by the remaining input, so corrupt
// input cannot make decoding allocate without limit.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) dot() Dot {
	o := d.uvarint()
	return Dot{Origin: ReplicaID(o), Seq: d.uvarint()}
}

func (d *decoder) clock() Clock {
	n := d.count()
	if n == 0 {
		return nil
	}
	c := make(Clock, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		c = append(c, d.dot())
	}
	return c
}

func (d *decoder) bytes() []byte {
	n := d.count()
	if d.err != nil {
		return nil
	}
	v := append([]byte(nil), d.b[:n]...)
	d.b = d.b[n:]
	return v
}

func (d *decoder) shares() []Share {
	n := d.count()
	if n == 0 {
		return nil
	}
	ss := make([]Share, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		var s Share
		s.Origin = ReplicaID(d.uvarint())
		s.Start = d.uvarint()
		s.Seq = d.uvarint()
		s.HLC = HLC(d.uvarint())
		s.Int = d.varint()
		s.Float = d.float()
		s.By = ReplicaID(d.uvarint())
		ss = append(ss, s)
	}
	return ss
}

// Float exponents a state can hold: long double range (2^-16445 to 2^16384,
// with a 64-bit mantissa) with room for sums and differences beyond it.
const (
	minFloatExp = -16445 - 2*floatPrec
	maxFloatExp = 16384
)

// float reads a Float. One far outside the long double range cannot come
// from Redis arithmetic, and formatting it costs time and memory without
// bound (an exponent of -2e6 takes a minute), so it is corrupt.
func (d *decoder) float() Float {
	f := Float{Mant: d.uvarint(), Exp: int32(d.varint()), Neg: d.byte() == 1}
	if f.Mant != 0 && (f.Exp < minFloatExp || f.Exp > maxFloatExp) {
		d.fail()
	}
	return f
}

func (d *decoder) cell() Cell {
	var c Cell
	for n := d.count(); n > 0 && d.err == nil; n-- {
		c.Regs = append(c.Regs, Reg{Dot: d.dot(), HLC: HLC(d.uvarint()), Value: d.bytes()})
	}
	c.Shares = d.shares()
	c.Bases = d.shares()
	c.Tomb = d.clock()
	return c
}
