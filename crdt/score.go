package crdt

import "math/big"

// ScoreDelta returns the increment an OpZIncr carries when a member's score
// goes from old to updated at its origin: the exact difference, rounded to
// the 64-bit precision of counter shares. Summed onto old by Cell.Score it
// gives updated back, so increments made in sequence show what Redis's
// double arithmetic shows, while concurrent ones still add up. Both must
// be finite.
func ScoreDelta(old, updated float64) Float {
	d := new(big.Float).SetPrec(2200).SetFloat64(updated) // exact for any two doubles
	d.Sub(d, new(big.Float).SetFloat64(old))
	return FloatFromBig(d)
}
