package crdt_test

import (
	"math/big"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/georep/georep/crdt"
)

// TestParseInt checks ParseInt against Redis's string2ll: optional '-',
// digits without leading zeros, no '+' or spaces, at most 20 characters,
// int64 range.
func TestParseInt(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1", 1, true},
		{"-1", -1, true},
		{"10", 10, true},
		{"9223372036854775807", 9223372036854775807, true},
		{"-9223372036854775808", -9223372036854775808, true}, // 20 chars
		{"-1000000000000000000", -1000000000000000000, true}, // 20 chars
		{"9223372036854775808", 0, false},
		{"-9223372036854775809", 0, false},
		{"18446744073709551615", 0, false},
		{"18446744073709551616", 0, false},
		{"99999999999999999999", 0, false},  // 20 digits, overflows uint64
		{"100000000000000000000", 0, false}, // 21 chars
		{"-10000000000000000000", 0, false}, // 21 chars
		{"00000000000000000001", 0, false},
		{"", 0, false},
		{"-", 0, false},
		{"-0", 0, false},
		{"00", 0, false},
		{"01", 0, false},
		{"-01", 0, false},
		{"+1", 0, false},
		{" 1", 0, false},
		{"1 ", 0, false},
		{"1\n", 0, false},
		{"1.0", 0, false},
		{"1e3", 0, false},
		{"0x10", 0, false},
		{"--1", 0, false},
		{"1-", 0, false},
		{"abc", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := crdt.ParseInt([]byte(tc.in))
			if ok != tc.ok || got != tc.want {
				t.Fatalf("ParseInt(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestParseInt_FormatInt: every int64 formats to a string ParseInt takes
// back, and ParseInt accepts nothing FormatInt would not produce.
func TestParseInt_FormatInt(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		v := rapid.Int64().Draw(t, "v")
		got, ok := crdt.ParseInt([]byte(crdt.FormatInt(v)))
		if !ok || got != v {
			t.Fatalf("round trip of %d: %d, %v", v, got, ok)
		}
		s := rapid.StringMatching(`-?[0-9+ .]{0,21}`).Draw(t, "s")
		if n, ok := crdt.ParseInt([]byte(s)); ok && crdt.FormatInt(n) != s {
			t.Fatalf("ParseInt accepted %q as %d, which formats differently", s, n)
		}
	})
}

func mustFloat(t testing.TB, s string) crdt.Float {
	t.Helper()
	f, ok := crdt.ParseFloat([]byte(s))
	if !ok {
		t.Fatalf("ParseFloat(%q) failed", s)
	}
	return f
}

// TestParseFloat checks ParseFloat against Redis's string2ld (strtold): no
// surrounding space, no NaN or infinity, nothing after the number, long
// double range.
func TestParseFloat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // FormatFloat of the result; "" = rejected
	}{
		{"10.5", "10.5"},
		{"10.50", "10.5"},
		{"5.0e3", "5000"},
		{"1E3", "1000"},
		{"1e+3", "1000"},
		{"-2.5", "-2.5"},
		{"+5", "5"},
		{".5", "0.5"},
		{"-.5", "-0.5"},
		{"5.", "5"},
		{"00.5", "0.5"},
		{"007", "7"},
		{"-0", "0"},
		{"0", "0"},
		{"0e-5000", "0"}, // exact zero: no ERANGE
		{"1e-4940", "0"}, // a long double denormal: accepted (formats as 0)
		{"1e-17", "0.00000000000000001"},
		{"", ""},
		{" 1", ""},
		{"1 ", ""},
		{"\t1", ""},
		{"1\n", ""},
		{"abc", ""},
		{"1.5x", ""},
		{"1e", ""},
		{"e5", ""},
		{".", ""},
		{"--1", ""},
		{"nan", ""},
		{"NaN", ""},
		{"-nan", ""},
		{"inf", ""},
		{"-inf", ""},
		{"Infinity", ""},
		{"1e5000", ""},  // overflows long double
		{"-1e5000", ""}, // overflows long double
		{"1_000", ""},
		{"0x10", ""}, // strtold takes hex floats; we do not (stricter, see report)
		// strtold stops at 'p': Redis rejects these.
		{"1p3", ""},
		{"1P3", ""},
		// strtold underflows to zero with ERANGE: Redis rejects.
		{"1e-5000", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			f, ok := crdt.ParseFloat([]byte(tc.in))
			if tc.want == "" {
				if ok {
					t.Fatalf("ParseFloat(%q) accepted %s; Redis rejects it", tc.in, crdt.FormatFloat(f))
				}
				return
			}
			if !ok {
				t.Fatalf("ParseFloat(%q) rejected", tc.in)
			}
			if got := crdt.FormatFloat(f); got != tc.want {
				t.Fatalf("ParseFloat(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
	t.Run("long double max", func(t *testing.T) {
		if _, ok := crdt.ParseFloat([]byte("1.18e4932")); !ok {
			t.Fatalf("ParseFloat rejected 1.18e4932, within long double range")
		}
	})
	t.Run("length limit", func(t *testing.T) {
		long := "1." + strings.Repeat("0", crdt.MaxLongDoubleChars-3) // MaxLongDoubleChars-1 bytes
		if _, ok := crdt.ParseFloat([]byte(long)); !ok {
			t.Fatalf("ParseFloat rejected %d bytes", len(long))
		}
		if _, ok := crdt.ParseFloat([]byte(long + "0")); ok {
			t.Fatalf("ParseFloat accepted %d bytes (Redis: < MAX_LONG_DOUBLE_CHARS)", len(long)+1)
		}
	})
}

// TestFormatFloat checks INCRBYFLOAT results against Redis replies
// ("%.17Lf", trailing zeros and point removed, "-0" as "0").
func TestFormatFloat(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b string // a+b, at long double precision
		want string
	}{
		{"redis doc 10.50+0.1", "10.50", "0.1", "10.6"},
		{"redis doc 10.6-5", "10.6", "-5", "5.6"},
		{"redis doc 5.0e3+2.0e2", "5.0e3", "2.0e2", "5200"},
		{"0.1+0.2", "0.1", "0.2", "0.3"},
		{"integer result", "2.5", "0.5", "3"},
		{"zero", "0.5", "-0.5", "0"},
		{"negative zero", "-0", "-0", "0"},
		{"tiny negative rounds to 0", "-1e-20", "0", "0"},
		{"tiny positive rounds to 0", "1e-20", "0", "0"},
		{"17 decimals", "1e-17", "0", "0.00000000000000001"},
		{"large", "1e20", "0", "100000000000000000000"},
		{"negative", "-3.25", "1", "-2.25"},
		{"long double precision", "0.1", "0", "0.1"},
		{"3.0", "3.0", "0", "3"},
		{"increment beyond double", "10000000000000000", "1", "10000000000000001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := crdt.FormatFloat(crdt.AddFloat(mustFloat(t, tc.a), mustFloat(t, tc.b)))
			if got != tc.want {
				t.Fatalf("%s + %s = %s, want %s", tc.a, tc.b, got, tc.want)
			}
		})
	}
	t.Run("one third", func(t *testing.T) {
		third := crdt.FloatFromBig(new(big.Float).SetPrec(64).Quo(big.NewFloat(1), big.NewFloat(3)))
		if got, want := crdt.FormatFloat(third), "0.33333333333333333"; got != want {
			t.Fatalf("1/3 = %s, want %s", got, want)
		}
	})
	t.Run("zero value", func(t *testing.T) {
		if got := crdt.FormatFloat(crdt.Float{}); got != "0" {
			t.Fatalf("FormatFloat(0) = %q", got)
		}
		if got := crdt.FormatFloat(crdt.Float{Neg: true}); got != "0" {
			t.Fatalf("FormatFloat(-0) = %q", got)
		}
	})
}

// TestFloat_Arithmetic: AddFloat and SubFloat are exact inverses on small
// integers, AddFloat is commutative, FloatFromBig(f.Big()) is f, and
// formatted results parse back to the same value when they are exact.
func TestFloat_Arithmetic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := crdt.FloatFromBig(new(big.Float).SetInt64(rapid.Int64Range(-1<<40, 1<<40).Draw(t, "a")))
		bf := rapid.Float64().Draw(t, "b")
		b := crdt.FloatFromBig(new(big.Float).SetFloat64(bf))
		if crdt.AddFloat(a, b) != crdt.AddFloat(b, a) {
			t.Fatalf("AddFloat not commutative")
		}
		if got := crdt.FloatFromBig(a.Big()); got != a {
			t.Fatalf("FloatFromBig(Big(%+v)) = %+v", a, got)
		}
		if !crdt.SubFloat(a, a).IsZero() {
			t.Fatalf("a-a != 0")
		}
		s := crdt.FormatFloat(a)
		if back, ok := crdt.ParseFloat([]byte(s)); !ok || back != a {
			t.Fatalf("integer %s did not round trip: %+v %v", s, back, ok)
		}
		if crdt.FloatOverflows(a) || crdt.FloatOverflows(b) {
			t.Fatalf("ordinary value reported as overflowing")
		}
	})
	huge := mustFloat(t, "1e4900")
	if crdt.FloatOverflows(huge) {
		t.Fatalf("1e4900 reported as overflowing")
	}
	if !crdt.FloatOverflows(crdt.AddFloat(huge, crdt.FloatFromBig(new(big.Float).SetMantExp(big.NewFloat(1), 16384)))) {
		t.Fatalf("beyond long double range not reported as overflowing")
	}
}
