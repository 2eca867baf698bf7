package server

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/georep/georep/crdt"
)

// Helpers shared by the collection commands (hashes.go, sets.go, zsets.go,
// geo.go).

// collection returns key's state when it holds a collection of type t
// (exists false when the key does not exist), ErrWrongType when it holds
// another type.
func collection(v View, key []byte, t crdt.Type) (k *crdt.Key, exists bool, err error) {
	k, vt, err := visible(v, key)
	switch {
	case err != nil:
		return nil, false, err
	case vt == crdt.TypeNone:
		return nil, false, nil
	case vt != t:
		return nil, false, ErrWrongType
	}
	return k, true, nil
}

// collLen returns the number of elements of key's collection of type t (0
// when the key does not exist).
func collLen(v View, key []byte, t crdt.Type) (int64, error) {
	k, ok, err := collection(v, key, t)
	if err != nil || !ok {
		return 0, err
	}
	return k.Len(t), nil
}

// elements returns every live element of key's type t, in element order.
func elements(v View, key []byte, t crdt.Type) (elems [][]byte, cells []*crdt.Cell, err error) {
	err = v.ScanElems(key, t, nil, func(e []byte, c *crdt.Cell) bool {
		elems = append(elems, e)
		cells = append(cells, c)
		return true
	})
	return elems, cells, err
}

// smallCollection is the size up to which Redis keeps a collection in one
// compact encoding: SCAN returns it whole, and random picks are uniform
// over a list of every element here too.
const smallCollection = 128

// randomElems picks count elements of key's type t (size n > 0 live
// elements): distinct ones (at most n) when distinct, else count picks
// with repetition. Small collections are listed and picked uniformly;
// large ones by seeking to random positions between the first and the
// last element (not exactly uniform: an element after a larger gap in the
// element order is likelier).
func randomElems(v View, key []byte, t crdt.Type, n, count int64, distinct bool) (elems [][]byte, cells []*crdt.Cell, err error) {
	if distinct && count >= n {
		return elements(v, key, t)
	}
	if n <= 4*smallCollection || (distinct && count*2 > n) {
		return pickFromAll(v, key, t, count, distinct)
	}
	first, last, err := elemEnds(v, key, t)
	if err != nil || first == nil {
		return nil, nil, err
	}
	seen := make(map[string]bool)
	for tries := int64(0); int64(len(elems)) < count; tries++ {
		if tries > 8*count+64 {
			// The picks keep landing on the same elements: list them all.
			return pickFromAll(v, key, t, count, distinct)
		}
		e, c, err := randomElem(v, key, t, first, last)
		if err != nil || e == nil {
			return elems, cells, err
		}
		if distinct {
			if seen[string(e)] {
				continue
			}
			seen[string(e)] = true
		}
		elems, cells = append(elems, e), append(cells, c)
	}
	return elems, cells, nil
}

// pickFromAll lists every element and picks count uniformly.
func pickFromAll(v View, key []byte, t crdt.Type, count int64, distinct bool) (elems [][]byte, cells []*crdt.Cell, err error) {
	all, allCells, err := elements(v, key, t)
	if err != nil || len(all) == 0 {
		return nil, nil, err
	}
	if distinct {
		for _, i := range rand.Perm(len(all))[:min(int(count), len(all))] {
			elems, cells = append(elems, all[i]), append(cells, allCells[i])
		}
		return elems, cells, nil
	}
	for i := int64(0); i < count; i++ {
		j := rand.IntN(len(all))
		elems, cells = append(elems, all[j]), append(cells, allCells[j])
	}
	return elems, cells, nil
}

// elemEnds returns the first and the last live element.
func elemEnds(v View, key []byte, t crdt.Type) (first, last []byte, err error) {
	err = v.ScanElems(key, t, nil, func(e []byte, _ *crdt.Cell) bool {
		first = e
		return false
	})
	if err != nil || first == nil {
		return nil, nil, err
	}
	err = v.ScanElemsReverse(key, t, nil, func(e []byte, _ *crdt.Cell) bool {
		last = e
		return false
	})
	return first, last, err
}

// randomElem returns the first live element after a random position
// between first and last (first itself if none follows).
func randomElem(v View, key []byte, t crdt.Type, first, last []byte) ([]byte, *crdt.Cell, error) {
	var elem []byte
	var cell *crdt.Cell
	visit := func(e []byte, c *crdt.Cell) bool {
		elem, cell = e, c
		return false
	}
	if err := v.ScanElems(key, t, randomBetween(first, last), visit); err != nil || elem != nil {
		return elem, cell, err
	}
	err := v.ScanElems(key, t, nil, visit)
	return elem, cell, err
}

// randomBetween returns a uniformly random byte string between lo and hi,
// reading both as base-256 fractions (with a few extra random bytes).
func randomBetween(lo, hi []byte) []byte {
	n := max(len(lo), len(hi)) + 4
	pad := func(b []byte) *big.Int {
		p := make([]byte, n)
		copy(p, b)
		return new(big.Int).SetBytes(p)
	}
	a, b := pad(lo), pad(hi)
	span := new(big.Int).Sub(b, a)
	if span.Sign() <= 0 {
		return lo
	}
	rb := make([]byte, n)
	for i := range rb {
		rb[i] = byte(rand.Uint32())
	}
	r := new(big.Int).Mul(new(big.Int).SetBytes(rb), span) // < 256^n * span
	r.Rsh(r, uint(8*n))
	r.Add(r, a)
	return r.FillBytes(make([]byte, n))
}

// parseCount parses a COUNT-like argument (ERR value is not an integer).
func parseCount(b []byte) (int64, error) {
	n, ok := crdt.ParseInt(b)
	if !ok {
		return 0, ErrNotInteger
	}
	return n, nil
}

// parseScore parses a score or increment the way Redis parses a double
// argument (strtod with no surrounding space, no NaN, no overflow).
func parseScore(b []byte) (float64, bool) {
	if len(b) == 0 || isSpaceByte(b[0]) {
		return 0, false
	}
	return parseStrtod(b, true)
}

// parseStrtod parses b as C's strtod reads a whole string: decimal or
// hexadecimal, "inf"/"infinity", any case. With strict, a result out of
// double range (overflow, or underflow to 0) fails like Redis's string2d;
// without, it gives ±inf or 0 like strtod. NaN always fails.
func parseStrtod(b []byte, strict bool) (float64, bool) {
	s := string(b)
	i := 0
	for i < len(s) && isSpaceByte(s[i]) {
		i++
	}
	s = s[i:]
	if s == "" || strings.ContainsAny(s, "_ \t\r\n\v\f") {
		return 0, false
	}
	body := s
	neg := false
	if body[0] == '+' || body[0] == '-' {
		neg = body[0] == '-'
		body = body[1:]
	}
	lower := strings.ToLower(body)
	if lower == "inf" || lower == "infinity" {
		if neg {
			return math.Inf(-1), true
		}
		return math.Inf(1), true
	}
	if lower == "" || strings.Contains(lower, "n") || strings.Contains(lower, "i") {
		return 0, false // nan, or garbage
	}
	if strings.HasPrefix(lower, "0x") {
		if !strings.Contains(lower, "p") {
			lower += "p0"
		}
		if len(lower) == 4 && lower == "0xp0" {
			return 0, false
		}
	} else if strings.ContainsAny(lower, "p") {
		return 0, false
	}
	f, err := strconv.ParseFloat(lower, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			if strict {
				return 0, false
			}
		} else {
			return 0, false
		}
	}
	if f == 0 && strict && hasNonZeroDigit(lower) {
		return 0, false // underflow
	}
	if neg {
		f = -f
	}
	return f, true
}

func hasNonZeroDigit(s string) bool {
	if strings.HasPrefix(s, "0x") {
		s = s[2:]
		if i := strings.IndexByte(s, 'p'); i >= 0 {
			s = s[:i]
		}
		return strings.ContainsAny(s, "123456789abcdef")
	}
	if i := strings.IndexByte(s, 'e'); i >= 0 {
		s = s[:i]
	}
	return strings.ContainsAny(s, "123456789")
}

func isSpaceByte(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// scoreReply is a score as Redis 7 sends it: a double.
func scoreReply(f float64) Reply { return double(f) }

// elemCursor is an HSCAN/SSCAN/ZSCAN cursor's position: the key, its type
// and the last element returned.
func encodeElemCursor(t crdt.Type, key, elem []byte) []byte {
	b := []byte{'e', byte(t)}
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	return append(b, elem...)
}

func decodeElemCursor(b []byte, t crdt.Type, key []byte) ([]byte, bool) {
	if len(b) < 2 || b[0] != 'e' || crdt.Type(b[1]) != t {
		return nil, false
	}
	n, w := binary.Uvarint(b[2:])
	if w <= 0 || uint64(len(b)-2-w) < n {
		return nil, false
	}
	if !bytes.Equal(b[2+w:2+w+int(n)], key) {
		return nil, false
	}
	return b[2+w+int(n):], true
}

// cmdElemScan is HSCAN, SSCAN and ZSCAN: key cursor [MATCH pattern] [COUNT
// count]. A collection of up to smallCollection elements is returned whole
// (like Redis's compact encodings), in the order whole gives if set; a
// larger one about COUNT elements a call, in element order, resuming after
// the last one returned.
func cmdElemScan(cl *call, t crdt.Type, item func(elem []byte, c *crdt.Cell) []Reply,
	whole func(v View, key []byte, fn func(elem []byte, items []Reply)) error) (Reply, error) {
	key := cl.args[1]
	cursor, err := parseCursor(cl.args[2])
	if err != nil {
		return Reply{}, err
	}
	var after []byte
	if cursor != 0 {
		b, ok := cl.s.cursors.get(cursor)
		if !ok {
			return Reply{}, ErrInvalidCursor
		}
		if after, ok = decodeElemCursor(b, t, key); !ok {
			return Reply{}, ErrInvalidCursor
		}
	}
	var out []Reply
	next := uint64(0)
	err = cl.view(func(v View) error {
		k, ok, err := collection(v, key, t)
		if err != nil || !ok {
			return err
		}
		var pat []byte
		count := int64(10)
		for i := 3; i < len(cl.args); i += 2 {
			if i+1 >= len(cl.args) {
				return ErrSyntax
			}
			switch strings.ToLower(string(cl.args[i])) {
			case "match":
				pat = cl.args[i+1]
			case "count":
				n, ok := crdt.ParseInt(cl.args[i+1])
				if !ok {
					return ErrNotInteger
				}
				if n < 1 {
					return ErrSyntax
				}
				count = n
			default:
				return ErrSyntax
			}
		}
		matchAll := pat == nil || (len(pat) == 1 && pat[0] == '*')
		if k.Len(t) <= smallCollection && after == nil && whole != nil {
			return whole(v, key, func(e []byte, items []Reply) {
				if matchAll || stringMatch(pat, e, false) {
					out = append(out, items...)
				}
			})
		}
		if k.Len(t) <= smallCollection {
			count = math.MaxInt64
		}
		var n int64
		var last []byte
		return v.ScanElems(key, t, after, func(e []byte, c *crdt.Cell) bool {
			if n == count {
				next = cl.s.cursors.put(encodeElemCursor(t, key, last))
				return false
			}
			n++
			last = e
			if matchAll || stringMatch(pat, e, false) {
				out = append(out, item(e, c)...)
			}
			return true
		})
	})
	if err != nil {
		return Reply{}, err
	}
	return array(bulkString(strconv.FormatUint(next, 10)), array(out...)), nil
}

// cmdRandPick is HRANDFIELD and ZRANDMEMBER: without a count one random
// element (nil when the key does not exist); with a count that many
// distinct ones, or, for a negative count, that many with repeats; with the
// option word (WITHVALUES, WITHSCORES) each followed by value(cell).
func cmdRandPick(cl *call, t crdt.Type, option string, value func(c *crdt.Cell) Reply) (Reply, error) {
	key := cl.args[1]
	if len(cl.args) == 2 {
		r := replyNull
		err := cl.view(func(v View) error {
			k, ok, err := collection(v, key, t)
			if err != nil || !ok {
				return err
			}
			es, _, err := randomElems(v, key, t, k.Len(t), 1, true)
			if err == nil && len(es) > 0 {
				r = bulk(es[0])
			}
			return err
		})
		return r, err
	}
	count, with, err := parseRandCount(cl.args[2:], option)
	if err != nil {
		return Reply{}, err
	}
	var out []Reply
	err = cl.view(func(v View) error {
		k, ok, err := collection(v, key, t)
		if err != nil || !ok || count == 0 {
			return err
		}
		es, cells, err := randomElems(v, key, t, k.Len(t), abs64(count), count > 0)
		if err != nil {
			return err
		}
		for i, e := range es {
			if with {
				out = append(out, pairReply(bulk(e), value(cells[i])))
			} else {
				out = append(out, bulk(e))
			}
		}
		return nil
	})
	return array(out...), err
}

// cmdRemoveElems is HDEL, SREM and ZREM: an observed remove (op kind) of
// each distinct element given that present reports in the collection of
// type t; the reply is how many were removed.
func cmdRemoveElems(cl *call, t crdt.Type, kind crdt.OpKind, present func(v View, key, elem []byte) (bool, error)) (Reply, error) {
	key := cl.args[1]
	elems := distinct(cl.args[2:])
	var n int64
	err := cl.update([][]byte{key}, func(tx Tx) error {
		if _, ok, err := collection(tx, key, t); err != nil || !ok {
			return err
		}
		var ops []crdt.Op
		for _, e := range elems {
			in, err := present(tx, key, e)
			if err != nil {
				return err
			}
			if in {
				ops = append(ops, crdt.Op{Kind: kind, Elem: e})
			}
		}
		if len(ops) > maxElemOps {
			return ErrTooManyElems
		}
		n = int64(len(ops))
		emit(tx, key, ops...)
		return nil
	})
	return integer(n), err
}
