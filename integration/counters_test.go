package integration

import "testing"

// TestCounters_C1_Accumulation is the reference's counter example:
// concurrent increments add up.
func TestCounters_C1_Accumulation(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.pauseAll()
	c.expect("us", "7", "INCRBY", "counter", "7")
	c.expect("eu", "3", "INCRBY", "counter", "3")
	c.expect("us", "7", "GET", "counter")
	c.expect("eu", "3", "GET", "counter")
	c.converge()
	c.expectAll("10", "GET", "counter")
	c.pauseAll()
	c.expect("us", "7", "DECRBY", "counter", "3")
	c.expect("eu", "16", "INCRBY", "counter", "6")
	c.converge()
	c.expectAll("13", "GET", "counter")
	c.expectAll("string", "TYPE", "counter")
}

// TestCounters_C2_DelVsConcurrentIncr: DEL resets what its region had seen;
// the unseen concurrent increment survives (observed reset).
func TestCounters_C2_DelVsConcurrentIncr(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "10", "INCRBY", "k", "10")
	c.converge()
	c.pauseAll()
	c.expect("us", "1", "DEL", "k")
	c.expect("eu", "15", "INCRBY", "k", "5")
	c.expect("us", "(nil)", "GET", "k")
	c.expect("eu", "15", "GET", "k")
	c.converge()
	c.expectAll("5", "GET", "k")
	// The counter goes on from there everywhere.
	c.expect("us", "6", "INCR", "k")
	c.converge()
	c.expectAll("6", "GET", "k")
}

// TestCounters_IntAndFloatIncrements: INCRBY 1 and INCRBYFLOAT 0.5
// concurrently from "10" converge to "11.5".
func TestCounters_IntAndFloatIncrements(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "OK", "SET", "k", "10")
	c.converge()
	c.pauseAll()
	c.expect("us", "11", "INCRBY", "k", "1")
	c.expect("eu", "10.5", "INCRBYFLOAT", "k", "0.5")
	c.converge()
	c.expectAll("11.5", "GET", "k")
	// Once the value is not an integer, INCR fails like in Redis.
	if _, err := c.do("us", "INCR", "k"); err == nil {
		t.Fatal("INCR on 11.5 succeeded")
	}
}

// TestCounters_SetVsConcurrentIncr: a SET on a counter resets the
// increments its region had seen (its own included); unseen concurrent
// increments land on the new base.
func TestCounters_SetVsConcurrentIncr(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "10", "INCRBY", "k", "10")
	c.converge()
	c.pauseAll()
	c.expect("us", "15", "INCRBY", "k", "5")
	c.expect("us", "OK", "SET", "k", "100")
	c.expect("eu", "11", "INCR", "k")
	c.expect("eu", "12", "INCR", "k")
	c.expect("us", "100", "GET", "k")
	c.converge()
	c.expectAll("102", "GET", "k")

	// In the other time order: the increment first, then the SET.
	c.pauseAll()
	c.expect("eu", "105", "INCRBY", "k", "3")
	c.expect("us", "OK", "SET", "k", "7")
	c.converge()
	c.expectAll("10", "GET", "k")

	// A SET after seeing the increments resets them all.
	c.expect("eu", "OK", "SET", "k", "1")
	c.converge()
	c.expectAll("1", "GET", "k")
}

// TestCounters_NonNumericBaseWins: when the surviving base is not a number,
// it wins and the unseen increments are ignored.
func TestCounters_NonNumericBaseWins(t *testing.T) {
	c := startCluster(t, []string{"us", "eu"})
	c.expect("us", "5", "INCRBY", "k", "5")
	c.converge()
	c.pauseAll()
	c.expect("us", "OK", "SET", "k", "abc")
	c.expect("eu", "6", "INCR", "k")
	c.converge()
	c.expectAll("abc", "GET", "k")
	for _, r := range c.names {
		if _, err := c.do(r, "INCR", "k"); err == nil {
			t.Fatalf("%s: INCR on abc succeeded", r)
		}
	}
}

// TestCounters_ThreeRegions: increments of three regions sum, and an
// observed reset in one region keeps the other two regions' unseen
// increments.
func TestCounters_ThreeRegions(t *testing.T) {
	c := startCluster(t, []string{"us", "eu", "ap"})
	c.pauseAll()
	c.expect("us", "1", "INCRBY", "n", "1")
	c.expect("eu", "10", "INCRBY", "n", "10")
	c.expect("ap", "100", "INCRBY", "n", "100")
	c.expect("ap", "99", "DECR", "n")
	c.converge()
	c.expectAll("110", "GET", "n")

	c.pauseAll()
	c.expect("us", "1", "DEL", "n")
	c.expect("eu", "115", "INCRBY", "n", "5")
	c.expect("ap", "117", "INCRBY", "n", "7")
	c.converge()
	c.expectAll("12", "GET", "n")

	// Float counters sum too, and every region shows the same digits.
	c.pauseAll()
	c.expect("us", "0.1", "INCRBYFLOAT", "f", "0.1")
	c.expect("eu", "0.2", "INCRBYFLOAT", "f", "0.2")
	c.expect("ap", "0.3", "INCRBYFLOAT", "f", "0.3")
	c.converge()
	c.expectAll("0.6", "GET", "f")

	// Half-synced: ap sees us's increment but not eu's.
	c.pause("eu")
	c.expect("us", "13", "INCR", "n")
	c.syncOnly("us", "ap") // eu is paused
	c.expect("ap", "13", "GET", "n")
	c.expect("eu", "12", "GET", "n")
	c.expect("eu", "13", "INCR", "n")
	c.converge()
	c.expectAll("14", "GET", "n")
}
