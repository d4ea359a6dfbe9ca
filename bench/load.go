package main

import (
	"context"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// request builds worker w's i-th request.
type request func(w, i int) (*http.Request, error)

// result is what one closed-loop run measured.
type result struct {
	Requests  int     `json:"requests"` // over all repetitions
	Errors    int     `json:"errors"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
	P50       float64 `json:"p50_ms"`
	P99       float64 `json:"p99_ms"`
	P999      float64 `json:"p999_ms"`
	// Server-side cost, from /proc: CPU time per request and peak RSS.
	CPUPerReq float64 `json:"cpu_us_per_request"`
	PeakRSSMB float64 `json:"peak_rss_mb"`
	// The whole machine during the run: the share of all cores busy and
	// waiting on I/O, and the CPU time of PostgreSQL's processes per
	// request (0 on SQLite, which runs inside imbee).
	BusyPct     float64 `json:"machine_busy_pct"`
	IOWaitPct   float64 `json:"machine_iowait_pct"`
	DBCPUPerReq float64 `json:"db_cpu_us_per_request"`
}

func newClient(conc int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = conc * 2
	t.MaxIdleConnsPerHost = conc * 2
	t.MaxConnsPerHost = conc
	return &http.Client{
		Transport:     t,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// closedLoop runs conc workers, each sending its next request as soon as the
// previous one is answered, for d. A response is an error unless its status
// is one of ok. Requests still in flight at d are finished, not cancelled:
// cancelling them dropped the slowest from the percentiles, and a run shorter
// than one stalled disk write measured nothing at all.
func closedLoop(ctx context.Context, client *http.Client, conc int, d time.Duration, next request, ok ...int) result {
	lat := make([][]time.Duration, conc)
	errs := make([]int, conc)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range conc {
		wg.Go(func() {
			buf := make([]time.Duration, 0, 1<<14)
			for i := 0; ctx.Err() == nil && time.Since(start) < d; i++ {
				req, err := next(w, i)
				if err != nil {
					errs[w]++
					continue
				}
				t0 := time.Now()
				resp, err := client.Do(req.WithContext(ctx))
				if err != nil {
					if ctx.Err() == nil {
						errs[w]++
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				buf = append(buf, time.Since(t0))
				if !slices.Contains(ok, resp.StatusCode) {
					errs[w]++
				}
			}
			lat[w] = buf
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	r := result{Seconds: elapsed.Seconds()}
	for w := range conc {
		all = append(all, lat[w]...)
		r.Errors += errs[w]
	}
	slices.Sort(all)
	r.Requests = len(all)
	r.PerSecond = float64(r.Requests) / elapsed.Seconds()
	r.P50, r.P99, r.P999 = pct(all, 0.50), pct(all, 0.99), pct(all, 0.999)
	return r
}

func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return float64(sorted[i].Microseconds()) / 1000
}

// median takes each figure's median over runs; errors are summed and the
// peak memory is the highest seen.
func median(runs []result) result {
	pick := func(f func(result) float64) float64 {
		xs := make([]float64, len(runs))
		for i, r := range runs {
			xs[i] = f(r)
		}
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	m := result{
		PerSecond:   pick(func(r result) float64 { return r.PerSecond }),
		P50:         pick(func(r result) float64 { return r.P50 }),
		P99:         pick(func(r result) float64 { return r.P99 }),
		P999:        pick(func(r result) float64 { return r.P999 }),
		CPUPerReq:   pick(func(r result) float64 { return r.CPUPerReq }),
		Seconds:     pick(func(r result) float64 { return r.Seconds }),
		BusyPct:     pick(func(r result) float64 { return r.BusyPct }),
		IOWaitPct:   pick(func(r result) float64 { return r.IOWaitPct }),
		DBCPUPerReq: pick(func(r result) float64 { return r.DBCPUPerReq }),
	}
	for _, r := range runs {
		m.Requests += r.Requests
		m.Errors += r.Errors
		m.PeakRSSMB = max(m.PeakRSSMB, r.PeakRSSMB)
	}
	return m
}
