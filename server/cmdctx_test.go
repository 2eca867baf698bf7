package server

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestCmdContext(t *testing.T) {
	t.Run("Deadline", func(t *testing.T) {
		d := time.Now().Add(time.Hour)
		c := newCmdContext(context.Background(), d)
		if got, ok := c.Deadline(); !ok || !got.Equal(d) {
			t.Fatalf("Deadline = %v, %v", got, ok)
		}
		parent, cancel := context.WithDeadline(context.Background(), d.Add(-time.Minute))
		defer cancel()
		if got, _ := newCmdContext(parent, d).Deadline(); !got.Equal(d.Add(-time.Minute)) {
			t.Fatalf("Deadline under an earlier parent deadline = %v", got)
		}
	})
	t.Run("ErrWithoutDone", func(t *testing.T) {
		c := newCmdContext(context.Background(), time.Now().Add(20*time.Millisecond))
		if err := c.Err(); err != nil {
			t.Fatalf("Err before the deadline = %v", err)
		}
		time.Sleep(30 * time.Millisecond)
		if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Err after the deadline = %v", err)
		}
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("Done not closed after the deadline")
		}
	})
	t.Run("DoneAtDeadline", func(t *testing.T) {
		c := newCmdContext(context.Background(), time.Now().Add(20*time.Millisecond))
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("Done not closed at the deadline")
		}
		if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Err = %v", err)
		}
	})
	t.Run("End", func(t *testing.T) {
		c := newCmdContext(context.Background(), time.Now().Add(time.Hour))
		done := c.Done()
		c.end()
		<-done
		if err := c.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Err after end = %v", err)
		}
		c2 := newCmdContext(context.Background(), time.Now().Add(time.Hour))
		c2.end()
		<-c2.Done()
		if err := c2.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Err after end without Done = %v", err)
		}
	})
	t.Run("Parent", func(t *testing.T) {
		parent, cancel := context.WithCancel(context.WithValue(context.Background(), t, "v"))
		c := newCmdContext(parent, time.Now().Add(time.Hour))
		if c.Value(t) != "v" {
			t.Fatal("Value not from parent")
		}
		child, stop := context.WithCancel(c)
		defer stop()
		cancel()
		<-child.Done()
		if err := c.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Err after parent cancel = %v", err)
		}
		c.end()
	})
}
