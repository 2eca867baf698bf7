package materializer_test

import (
	"testing"

	"github.com/georep/georep/materializer"
)

func TestValidSnapshotName(t *testing.T) {
	for name, want := range map[string]bool{
		"us-20260102T030405.000Z.snap":   true,
		"us-20260102T030405.000Z-2.snap": true,
		"x.snap":                         true,
		".snap":                          false,
		".hidden.snap":                   false,
		"../us.snap":                     false,
		"a/us.snap":                      false,
		`a\us.snap`:                      false,
		"us..snap":                       false,
		"us.snap.tmp":                    false,
		"us":                             false,
		"":                               false,
		"us\x00.snap":                    false,
	} {
		if got := materializer.ValidSnapshotName(name); got != want {
			t.Errorf("ValidSnapshotName(%q) = %v, want %v", name, got, want)
		}
	}
}
