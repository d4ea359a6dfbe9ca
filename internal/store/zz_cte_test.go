package store

import (
	"context"
	"testing"
	"time"
)

func TestScratchCTE(t *testing.T) {
	s := mustOpen(t, nil)
	for _, n := range []int{1000000, 3000000} {
		st := time.Now()
		var x int
		s.read.QueryRowContext(context.Background(), `WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM c WHERE n < ?) SELECT max(n) FROM c`, n).Scan(&x)
		t.Log(n, x, time.Since(st))
	}
}
