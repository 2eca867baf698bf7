package deploy

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestInstanceIDs: a dev region keeps its instance ID across runs on one data
// directory whatever the region list; a new region gets an ID never used
// there, even by a region left out of this run.
func TestInstanceIDs(t *testing.T) {
	dir := t.TempDir()
	step := func(regions []string, want []uint32) {
		t.Helper()
		got, err := instanceIDs(dir, regions)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("instanceIDs(%v) = %v, want %v", regions, got, want)
		}
	}
	step([]string{"us", "eu"}, []uint32{1, 2})
	step([]string{"us", "eu", "ap"}, []uint32{1, 2, 3}) // ap added
	step([]string{"ap", "us", "eu"}, []uint32{3, 1, 2}) // reordered
	step([]string{"us", "eu"}, []uint32{1, 2})          // ap removed
	step([]string{"us", "eu", "fr"}, []uint32{1, 2, 4}) // 3 stays ap's

	// State written before IDs were recorded keeps its position's ID.
	old := t.TempDir()
	for _, r := range []string{"us", "eu"} {
		if err := os.MkdirAll(filepath.Join(old, r, "state"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got, err := instanceIDs(old, []string{"us", "eu", "ap"})
	if err != nil || !reflect.DeepEqual(got, []uint32{1, 2, 3}) {
		t.Fatalf("instanceIDs of old state = %v, %v; want [1 2 3]", got, err)
	}

	if got, err := instanceIDs("", []string{"a", "b"}); err != nil || !reflect.DeepEqual(got, []uint32{1, 2}) {
		t.Fatalf("instanceIDs in memory = %v, %v", got, err)
	}
}
