package materializer

import (
	"errors"

	"github.com/georep/georep/crdt"
)

// errListsNotWired is returned until lists are wired into the apply loop.
var errListsNotWired = errors.New("lists are not available yet")

// List opens key's list (not wired yet).
func (s *Snapshot) List(key []byte) (*crdt.List, error) { return nil, errListsNotWired }

// List opens key's list with the effects in flight (not wired yet).
func (t *Tx) List(key []byte) (*crdt.List, error) { return nil, errListsNotWired }

// WatchLists registers fn, called with every key whose list gained
// elements (not wired yet).
func (n *Node) WatchLists(fn func(key []byte)) {}
