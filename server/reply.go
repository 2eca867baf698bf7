package server

import (
	"math"
	"strconv"
	"strings"
)

// kind is the RESP type of a Reply.
type kind uint8

const (
	kindSimple    kind = iota // +OK
	kindError                 // -ERR ... (text without the '-')
	kindInt                   // :1
	kindBulk                  // $3 foo
	kindNull                  // RESP2 $-1, RESP3 _
	kindNullArray             // RESP2 *-1, RESP3 _
	kindArray                 // *n
	kindMap                   // RESP3 %n, RESP2 flat *2n
	kindSet                   // RESP3 ~n, RESP2 *n
	kindDouble                // RESP3 ,1.5 RESP2 bulk string
	kindBool                  // RESP3 #t RESP2 :1
	kindVerbatim              // RESP3 =n txt:..., RESP2 bulk string
	kindPush                  // RESP3 >n, RESP2 *n
	kindPair                  // in an array: RESP3 *2, RESP2 its two elements inline
)

// Reply is one command reply, independent of the protocol version: the
// writer encodes it as RESP2 or RESP3 for the connection.
type Reply struct {
	kind  kind
	str   string  // simple, error, verbatim format
	bulk  []byte  // bulk, verbatim text
	num   int64   // int, bool
	dbl   float64 // double
	elems []Reply // array, map (key, value, ...), set, push
}

// Reply constructors.

var (
	replyOK        = Reply{kind: kindSimple, str: "OK"}
	replyNull      = Reply{kind: kindNull}
	replyNullArray = Reply{kind: kindNullArray}
	replyZero      = Reply{kind: kindInt}
	replyOne       = Reply{kind: kindInt, num: 1}
	replyEmpty     = Reply{kind: kindArray, elems: []Reply{}}
)

func simple(s string) Reply         { return Reply{kind: kindSimple, str: s} }
func errReply(s string) Reply       { return Reply{kind: kindError, str: s} }
func integer(n int64) Reply         { return Reply{kind: kindInt, num: n} }
func bulk(b []byte) Reply           { return Reply{kind: kindBulk, bulk: b} }
func bulkString(s string) Reply     { return Reply{kind: kindBulk, bulk: []byte(s)} }
func array(elems ...Reply) Reply    { return Reply{kind: kindArray, elems: nonNil(elems)} }
func mapReply(kv ...Reply) Reply    { return Reply{kind: kindMap, elems: nonNil(kv)} }
func setReply(elems ...Reply) Reply { return Reply{kind: kindSet, elems: nonNil(elems)} }
func double(f float64) Reply        { return Reply{kind: kindDouble, dbl: f} }
func verbatim(format, text string) Reply {
	return Reply{kind: kindVerbatim, str: format, bulk: []byte(text)}
}

func boolReply(b bool) Reply {
	if b {
		return Reply{kind: kindBool, num: 1}
	}
	return Reply{kind: kindBool}
}

// nullableBulk returns a bulk reply of b, or null when ok is false.
func nullableBulk(b []byte, ok bool) Reply {
	if !ok {
		return replyNull
	}
	return bulk(b)
}

func nonNil(e []Reply) []Reply {
	if e == nil {
		return []Reply{}
	}
	return e
}

// bulkStrings returns an array of bulk strings.
func bulkStrings(ss ...string) Reply {
	out := make([]Reply, len(ss))
	for i, s := range ss {
		out[i] = bulkString(s)
	}
	return array(out...)
}

// isError reports whether r is an error reply.
func (r Reply) isError() bool { return r.kind == kindError }

// appendReply appends r encoded for protocol version proto (2 or 3).
func appendReply(b []byte, r Reply, proto int) []byte {
	switch r.kind {
	case kindSimple:
		b = append(b, '+')
		b = appendLine(b, r.str)
	case kindError:
		b = append(b, '-')
		b = appendLine(b, r.str)
	case kindInt:
		b = append(b, ':')
		b = strconv.AppendInt(b, r.num, 10)
		b = append(b, '\r', '\n')
	case kindBulk:
		b = appendBulk(b, r.bulk)
	case kindNull:
		if proto >= 3 {
			b = append(b, "_\r\n"...)
		} else {
			b = append(b, "$-1\r\n"...)
		}
	case kindNullArray:
		if proto >= 3 {
			b = append(b, "_\r\n"...)
		} else {
			b = append(b, "*-1\r\n"...)
		}
	case kindArray:
		n := len(r.elems)
		if proto < 3 {
			for _, e := range r.elems {
				if e.kind == kindPair {
					n++
				}
			}
		}
		b = appendHeader(b, '*', n)
		for _, e := range r.elems {
			if e.kind == kindPair && proto < 3 {
				b = appendReply(b, e.elems[0], proto)
				b = appendReply(b, e.elems[1], proto)
				continue
			}
			b = appendReply(b, e, proto)
		}
	case kindPair:
		b = appendHeader(b, '*', 2)
		b = appendReply(b, r.elems[0], proto)
		b = appendReply(b, r.elems[1], proto)
	case kindMap:
		if proto >= 3 {
			b = appendHeader(b, '%', len(r.elems)/2)
		} else {
			b = appendHeader(b, '*', len(r.elems))
		}
		for _, e := range r.elems {
			b = appendReply(b, e, proto)
		}
	case kindSet, kindPush:
		c := byte('*')
		if proto >= 3 {
			c = '~'
			if r.kind == kindPush {
				c = '>'
			}
		}
		b = appendHeader(b, c, len(r.elems))
		for _, e := range r.elems {
			b = appendReply(b, e, proto)
		}
	case kindDouble:
		if proto >= 3 {
			b = append(b, ',')
			b = appendDouble(b, r.dbl)
			b = append(b, '\r', '\n')
		} else {
			b = appendBulk(b, appendDouble(nil, r.dbl))
		}
	case kindBool:
		if proto >= 3 {
			if r.num != 0 {
				b = append(b, "#t\r\n"...)
			} else {
				b = append(b, "#f\r\n"...)
			}
		} else {
			b = append(b, ':')
			b = strconv.AppendInt(b, r.num, 10)
			b = append(b, '\r', '\n')
		}
	case kindVerbatim:
		if proto >= 3 {
			b = appendHeader(b, '=', len(r.str)+1+len(r.bulk))
			b = append(b, r.str...)
			b = append(b, ':')
			b = append(b, r.bulk...)
			b = append(b, '\r', '\n')
		} else {
			b = appendBulk(b, r.bulk)
		}
	}
	return b
}

// appendLine appends s as the rest of a simple line. CR and LF would break
// the framing, so they become spaces (Redis does the same for errors).
func appendLine(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		b = append(b, c)
	}
	return append(b, '\r', '\n')
}

func appendHeader(b []byte, c byte, n int) []byte {
	b = append(b, c)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

func appendBulk(b, v []byte) []byte {
	b = appendHeader(b, '$', len(v))
	b = append(b, v...)
	return append(b, '\r', '\n')
}

// appendDouble formats f like Redis 7.2's d2string (used for every double
// reply: ZSCORE, ZRANGE ... WITHSCORES, RESP3 doubles): inf, -inf, nan,
// "0" and "-0", an integer printed as one when it is within ±2^62, else
// the shortest digits that round-trip, laid out as fpconv_dtoa does
// (plain up to 21 digits, scientific "1.5e-7" / "1e+22" beyond).
func appendDouble(b []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(b, "inf"...)
	case math.IsInf(f, -1):
		return append(b, "-inf"...)
	case math.IsNaN(f):
		return append(b, "nan"...)
	case f == 0:
		if math.Signbit(f) {
			return append(b, "-0"...)
		}
		return append(b, '0')
	case f >= -(1<<62) && f <= 1<<62 && f == math.Trunc(f):
		return strconv.AppendInt(b, int64(f), 10)
	}
	neg := f < 0
	if neg {
		b = append(b, '-')
		f = -f
	}
	// Shortest digits d1..dn and exponent E: f = d1.d2...dn × 10^E.
	e := strconv.AppendFloat(nil, f, 'e', -1, 64)
	mant, expPart, _ := strings.Cut(string(e), "e")
	digits := strings.Replace(mant, ".", "", 1)
	exp10, _ := strconv.Atoi(expPart)
	nd := len(digits)
	k := exp10 - (nd - 1) // f = digits × 10^k
	absExp := exp10
	if absExp < 0 {
		absExp = -absExp
	}
	switch {
	case k >= 0 && absExp < nd+7:
		b = append(b, digits...)
		for i := 0; i < k; i++ {
			b = append(b, '0')
		}
		return b
	case k < 0 && (k > -7 || absExp < 4):
		off := nd + k
		if off <= 0 {
			b = append(b, '0', '.')
			for i := 0; i < -off; i++ {
				b = append(b, '0')
			}
			return append(b, digits...)
		}
		b = append(b, digits[:off]...)
		b = append(b, '.')
		return append(b, digits[off:]...)
	}
	if neg && nd > 17 {
		digits, nd = digits[:17], 17
	}
	b = append(b, digits[0])
	if nd > 1 {
		b = append(b, '.')
		b = append(b, digits[1:]...)
	}
	b = append(b, 'e')
	if exp10 < 0 {
		b = append(b, '-')
	} else {
		b = append(b, '+')
	}
	return strconv.AppendInt(b, int64(absExp), 10)
}
