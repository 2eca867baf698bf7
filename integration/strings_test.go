package integration

import "testing"

// TestSeedExample is the example every georep user meets first.
func TestSeedExample(t *testing.T) {
	c := startCluster(t, []string{"us", "eu", "ap"})
	c.pauseAll()
	c.expect("us", "OK", "SET", "key1", "a")
	c.expect("eu", "OK", "SET", "key1", "b")
	c.converge()
	for _, r := range []string{"us", "eu", "ap"} {
		c.expect(r, "b", "GET", "key1")
	}
	c.expect("us", "OK", "SET", "key1", "c")
	c.sync()
	c.expect("eu", "c", "GET", "key1")
	c.pause("us")
	c.expect("eu", "OK", "SET", "key1", "d")
	c.expect("us", "c", "GET", "key1")
	c.converge()
	for _, r := range []string{"us", "eu", "ap"} {
		c.expect(r, "d", "GET", "key1")
	}
}
