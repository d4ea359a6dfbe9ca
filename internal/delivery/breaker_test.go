package delivery

import (
	"errors"
	"testing"
	"time"
)

// TestBreaker: a host's circuit opens after BreakerFailures failures in a
// row, for the cool-down; other hosts are not affected; after the
// cool-down one try goes through, and one more failure opens it again
// while a success closes it.
func TestBreaker(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	b := newBreaker(30 * time.Second)
	host := target("https://Hooks.Example.com:8443/a?b=c")
	if host != "hooks.example.com:8443" {
		t.Fatalf("target = %q", host)
	}
	for i := range BreakerFailures {
		if _, err := b.allow(host, now); err != nil {
			t.Fatalf("closed circuit refused try %d: %v", i+1, err)
		}
		b.record(host, false, now)
	}
	wait, err := b.allow(host, now.Add(time.Second))
	if !errors.Is(err, errCircuitOpen) || wait != 29*time.Second {
		t.Fatalf("after %d failures: wait %v, err %v; want the circuit open for 29 s more", BreakerFailures, wait, err)
	}
	if Reason(err) != "not tried: the target failed repeatedly, waiting before trying again" {
		t.Errorf("Reason = %q", Reason(err))
	}
	if _, err := b.allow("other.example.com", now); err != nil {
		t.Errorf("another host refused: %v", err)
	}
	later := now.Add(30 * time.Second)
	if _, err := b.allow(host, later); err != nil {
		t.Fatalf("after the cool-down: %v", err)
	}
	b.record(host, false, later)
	if _, err := b.allow(host, later); !errors.Is(err, errCircuitOpen) {
		t.Fatalf("a failure after the cool-down did not open the circuit again: %v", err)
	}
	b.record(host, true, later.Add(31*time.Second))
	for range BreakerFailures - 1 {
		b.record(host, false, later.Add(31*time.Second))
	}
	if _, err := b.allow(host, later.Add(31*time.Second)); err != nil {
		t.Errorf("a success did not reset the count: %v", err)
	}
}
