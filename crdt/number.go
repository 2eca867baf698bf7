package crdt

import (
	"math"
	"math/big"
	"strconv"
	"strings"
)

// floatPrec is the mantissa precision of x87 long double, which Redis uses
// for INCRBYFLOAT; arithmetic at this precision gives Redis's replies.
const floatPrec = 64

// Float is an exact binary floating-point number of 64-bit precision: the
// value is (-1)^Neg * Mant * 2^Exp. The zero value is 0.
type Float struct {
	Mant uint64
	Exp  int32
	Neg  bool
}

// IsZero reports whether f is 0.
func (f Float) IsZero() bool { return f.Mant == 0 }

// Big returns f as a big.Float of precision 64.
func (f Float) Big() *big.Float {
	b := new(big.Float).SetPrec(floatPrec).SetUint64(f.Mant)
	b.SetMantExp(b, int(f.Exp))
	if f.Neg {
		b.Neg(b)
	}
	return b
}

// FloatFromBig rounds b to 64-bit precision.
func FloatFromBig(b *big.Float) Float {
	if b.Sign() == 0 || b.IsInf() {
		return Float{}
	}
	r := new(big.Float).SetPrec(floatPrec).Set(b)
	neg := r.Sign() < 0
	r.Abs(r)
	var m big.Float
	exp := r.MantExp(&m) // r = m * 2^exp, 0.5 <= m < 1
	m.SetMantExp(&m, floatPrec)
	u, _ := m.Uint64()
	return Float{Mant: u, Exp: int32(exp - floatPrec), Neg: neg}
}

// AddFloat returns a+b at 64-bit precision.
func AddFloat(a, b Float) Float {
	s := new(big.Float).SetPrec(floatPrec)
	return FloatFromBig(s.Add(a.Big(), b.Big()))
}

// SubFloat returns a-b at 64-bit precision.
func SubFloat(a, b Float) Float {
	s := new(big.Float).SetPrec(floatPrec)
	return FloatFromBig(s.Sub(a.Big(), b.Big()))
}

// MaxLongDoubleChars bounds what ParseFloat accepts, like Redis.
const MaxLongDoubleChars = 5 * 1024

// ParseFloat parses s the way Redis parses a long double (string2ld): no
// surrounding space, no NaN or infinity.
func ParseFloat(s []byte) (Float, bool) {
	if len(s) == 0 || len(s) >= MaxLongDoubleChars {
		return Float{}, false
	}
	if isSpace(s[0]) || isSpace(s[len(s)-1]) {
		return Float{}, false
	}
	str := string(s)
	low := strings.ToLower(str)
	// big.Float also takes a binary exponent ("1p3"), where strtold stops.
	if strings.Contains(low, "nan") || strings.Contains(low, "inf") || strings.Contains(low, "p") {
		return Float{}, false
	}
	b, _, err := new(big.Float).SetPrec(floatPrec).Parse(str, 10)
	if err != nil || b.IsInf() {
		return Float{}, false
	}
	// long double overflows above ~1.19e4932, and strtold underflows to 0
	// (ERANGE, which Redis rejects) below half its smallest denormal 2^-16445
	if e := b.MantExp(nil); e > 16384 || (b.Sign() != 0 && e < -16445) {
		return Float{}, false
	}
	return FloatFromBig(b), true
}

// FormatFloat formats f as Redis formats INCRBYFLOAT results ("%.17Lf" with
// trailing zeros and a trailing point removed).
func FormatFloat(f Float) string {
	s := f.Big().Text('f', 17)
	if strings.IndexByte(s, '.') >= 0 {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// FloatOverflows reports whether f is beyond long double range.
func FloatOverflows(f Float) bool { return int(f.Exp)+floatPrec > 16384 }

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// ParseInt parses s as a signed 64-bit integer the way Redis does
// (string2ll): optional '-', digits, no leading zeros, no '+' or spaces.
func ParseInt(s []byte) (int64, bool) {
	if len(s) == 0 || len(s) > 20 {
		return 0, false
	}
	if len(s) == 1 && s[0] == '0' {
		return 0, true
	}
	neg := false
	p := s
	if p[0] == '-' {
		neg = true
		p = p[1:]
		if len(p) == 0 {
			return 0, false
		}
	}
	if p[0] < '1' || p[0] > '9' {
		return 0, false
	}
	var v uint64
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, false
		}
		if v > (math.MaxUint64-9)/10 {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return -int64(v), true
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

// Counter range for locally produced values (59-bit signed).
const (
	CounterMax = 1<<58 - 1
	CounterMin = -(1 << 58)
)

// FormatInt formats v in decimal.
func FormatInt(v int64) string { return strconv.FormatInt(v, 10) }
