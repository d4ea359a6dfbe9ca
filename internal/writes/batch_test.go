package writes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestBatcher: callers that arrive while a write runs are written together
// in the next one, every value exactly once, and each caller gets the
// error of the write that held its value; an idle batcher writes a lone
// value at once.
func TestBatcher(t *testing.T) {
	var (
		mu      sync.Mutex
		batches [][]int
		release = make(chan struct{})
	)
	b := &batcher[int]{}
	b.write = func(_ context.Context, vs []int) error {
		mu.Lock()
		batches = append(batches, slices.Clone(vs))
		first := len(batches) == 1
		mu.Unlock()
		if first {
			<-release // the first write lasts until everyone else waits
			return errors.New("first write failed")
		}
		return nil
	}
	const n = 50
	errs := make([]error, n)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = b.do(context.Background(), 0) })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		mu.Lock()
		started := len(batches) == 1
		mu.Unlock()
		if started {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first write did not start")
		}
	}
	for i := 1; i < n; i++ {
		wg.Go(func() { errs[i] = b.do(context.Background(), i) })
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		b.mu.Lock()
		waiting := len(b.pending)
		b.mu.Unlock()
		if waiting == n-1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d callers waiting, want %d", waiting, n-1)
		}
	}
	close(release)
	wg.Wait()

	if len(batches) != 2 || !slices.Equal(batches[0], []int{0}) || len(batches[1]) != n-1 {
		t.Fatalf("batches %v: want [0] then the %d others together", batches, n-1)
	}
	seen := slices.Sorted(slices.Values(append(slices.Clone(batches[0]), batches[1]...)))
	for i, v := range seen {
		if v != i {
			t.Fatalf("values written %v: want each of 0..%d once", seen, n-1)
		}
	}
	if errs[0] == nil {
		t.Error("the caller of the failed write got no error")
	}
	for i := 1; i < n; i++ {
		if errs[i] != nil {
			t.Errorf("caller %d got %v from a write that succeeded", i, errs[i])
		}
	}
	if err := b.do(context.Background(), n); err != nil || len(batches) != 3 || !slices.Equal(batches[2], []int{n}) {
		t.Errorf("a lone value on an idle batcher: %v, batches %v", err, batches)
	}
}

// TestBatcherUnderLoad: many callers at once, some batches failing: every
// value is written exactly once and each caller sees its own batch's
// outcome (run with -race).
func TestBatcherUnderLoad(t *testing.T) {
	var (
		mu      sync.Mutex
		written = map[int]int{}
		failed  = map[int]bool{}
		writes  int
	)
	b := &batcher[int]{}
	b.write = func(_ context.Context, vs []int) error {
		mu.Lock()
		defer mu.Unlock()
		writes++
		fail := writes%3 == 0
		for _, v := range vs {
			written[v]++
			failed[v] = fail
		}
		if fail {
			return fmt.Errorf("write %d failed", writes)
		}
		return nil
	}
	const n = 2000
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = b.do(context.Background(), i) })
	}
	wg.Wait()
	for i := range n {
		if written[i] != 1 {
			t.Fatalf("value %d written %d times", i, written[i])
		}
		if (errs[i] != nil) != failed[i] {
			t.Fatalf("value %d: caller got %v, its batch failed: %v", i, errs[i], failed[i])
		}
	}
	t.Logf("%d values in %d writes", n, writes)
}
