//go:build !race

package metrics

import (
	"testing"
	"time"

	"github.com/imbee/imbee"
)

// TestObserveRequestAllocs: once a label set has been seen, counting a
// request allocates nothing (the race detector's bookkeeping would).
func TestObserveRequestAllocs(t *testing.T) {
	m := newTestMetrics(t, &fakeSource{}, discard())
	m.ObserveRequest("/token/new", 200, imbee.CodeOK, true, time.Millisecond)
	if n := testing.AllocsPerRun(1000, func() {
		m.ObserveRequest("/token/new", 200, imbee.CodeOK, true, time.Millisecond)
	}); n != 0 {
		t.Errorf("%v allocations per request, want 0", n)
	}
}
