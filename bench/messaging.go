package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// msgConfig sizes the messaging measurement.
type msgConfig struct {
	Chats         int     // 1:1 chats, each with both members' sockets connected
	Messages      int     // messages the paced sender sends into them
	Rate          float64 // messages per second it offers
	Group         int     // members of the fan-out group, its creator included
	GroupMessages int     // messages one member sends to the group, closed-loop
}

// messagingResult is the messaging measurement of one backend: one run,
// not a median.
type messagingResult struct {
	Mode    string        `json:"mode"`
	Latency latencyResult `json:"latency"`
	Fanout  fanoutResult  `json:"fanout"`
}

// latencyResult: a paced sender sends into 1:1 chats whose two members
// both have a socket connected; every message frame a socket receives is
// one delivery.
type latencyResult struct {
	Chats    int     `json:"chats"`
	Sockets  int     `json:"sockets"`   // connected, two per chat
	ConnectS float64 `json:"connect_s"` // to connect them all and get their "ready"
	Messages int     `json:"messages"`  // sent
	Offered  float64 `json:"offered_per_second"`
	// PerSecond is the messages delivered to both sockets of their chat
	// per second, from the first send to the last frame received.
	PerSecond  float64 `json:"messages_per_second"`
	Deliveries int     `json:"deliveries"`
	// P50, P99 and P999: from the start of the send request to a socket
	// receiving the message's frame, over every delivery.
	P50  float64 `json:"p50_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p999_ms"`
	// SendP50 and SendP99: the send request's own latency.
	SendP50 float64 `json:"send_p50_ms"`
	SendP99 float64 `json:"send_p99_ms"`
	// LateMS is how far behind its schedule the latest send started (the
	// load generator could not keep the pace if it is large).
	LateMS float64 `json:"sender_late_ms"`
	errorCounts
	// Server-side cost: CPU per message sent (its deliveries included) and
	// peak RSS with the sockets connected.
	CPUPerMsg float64 `json:"cpu_us_per_message"`
	PeakRSSMB float64 `json:"peak_rss_mb"`
}

// fanoutResult: one member sends to a group, closed-loop, with every
// member's socket connected.
type fanoutResult struct {
	Members  int `json:"members"` // sockets connected, one per member
	Messages int `json:"messages"`
	// DeliveriesPerSecond is frames received by the other members' sockets
	// per second, from the first send to the last frame.
	DeliveriesPerSecond float64 `json:"deliveries_per_second"`
	// P50, P99 and Max: from the start of the send request to the last of
	// the other members' sockets receiving the message.
	P50     float64 `json:"last_receiver_p50_ms"`
	P99     float64 `json:"last_receiver_p99_ms"`
	Max     float64 `json:"last_receiver_max_ms"`
	SendP50 float64 `json:"send_p50_ms"`
	SendP99 float64 `json:"send_p99_ms"`
	errorCounts
	CPUPerMsg float64 `json:"cpu_us_per_message"`
	PeakRSSMB float64 `json:"peak_rss_mb"`
}

// errorCounts: Errors is the sum of the others. A seq a socket received
// twice is a duplicate, one it never received is missing, one older than a
// seq it already had is out of order.
type errorCounts struct {
	Errors      int `json:"errors"`
	SendErrors  int `json:"send_errors"`
	Missing     int `json:"missing"`
	Duplicates  int `json:"duplicates"`
	OutOfOrder  int `json:"out_of_order"`
	SocketError int `json:"socket_errors"` // failed to connect, or ended early
}

// String is the total, with its parts when there are any.
func (c errorCounts) String() string {
	if c.Errors == 0 {
		return "0"
	}
	var parts []string
	for _, x := range []struct {
		n    int
		what string
	}{{c.SendErrors, "send"}, {c.Missing, "missing"}, {c.Duplicates, "duplicate"}, {c.OutOfOrder, "out of order"}, {c.SocketError, "socket"}} {
		if x.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", x.n, x.what))
		}
	}
	return fmt.Sprintf("%d (%s)", c.Errors, strings.Join(parts, ", "))
}

func (c *errorCounts) sum() {
	c.Errors = c.SendErrors + c.Missing + c.Duplicates + c.OutOfOrder + c.SocketError
}

// deliveryWait bounds the wait for the last frames after the last send.
const deliveryWait = 10 * time.Second

// runMessaging makes its own users, chats and group on the running imbee,
// then measures the latency and the fan-out.
func runMessaging(ctx context.Context, mc msgConfig, p *proc, e *env) (*messagingResult, error) {
	users := max(2*mc.Chats, mc.Group)
	if need := uint64(2*mc.Chats + mc.Group + 512); fileLimit() < need {
		log.Printf("messaging: the file descriptor limit %d may be too low for %d sockets", fileLimit(), 2*mc.Chats)
	}
	t0 := time.Now()
	m := &msgBench{e: e, p: p, users: make([]poolUser, users), client: newClient(256)}
	defer m.client.CloseIdleConnections()
	err := parallel(8, users, func(i int) error {
		b, err := e.call("/third_parties/user/new", e.c.Token, fmt.Sprintf(`{"uniqueIdSha":"msg-%d",%s}`, i, device))
		if err != nil {
			return err
		}
		m.users[i] = poolUser{idsha: b["virtualUser"].(string), apikey: b["apikey"].(string)}
		return nil
	})
	if err != nil {
		return nil, err
	}
	chats := make([]string, mc.Chats)
	err = parallel(8, mc.Chats, func(i int) error {
		b, err := e.call("/chat/create", m.users[2*i].apikey, e.chatBody(m.users[2*i+1].idsha))
		if err != nil {
			return err
		}
		chats[i], _ = b["conversationId"].(string)
		return nil
	})
	if err != nil {
		return nil, err
	}
	log.Printf("messaging: %d users and %d chats made in %v", users, mc.Chats, time.Since(t0).Round(time.Millisecond))
	res := &messagingResult{}
	if res.Latency, err = m.latency(ctx, mc, chats); err != nil {
		return nil, err
	}
	if mc.Group > 1 {
		if res.Fanout, err = m.fanout(ctx, mc); err != nil {
			return nil, err
		}
	}
	return res, nil
}

type msgBench struct {
	e      *env
	p      *proc
	users  []poolUser
	client *http.Client
}

// latency connects both members of each chat, then sends mc.Messages at
// mc.Rate, message k into chat k%Chats, from its members in turn.
func (m *msgBench) latency(ctx context.Context, mc msgConfig, chats []string) (latencyResult, error) {
	r := latencyResult{Chats: mc.Chats, Sockets: 2 * mc.Chats, Messages: mc.Messages, Offered: mc.Rate}
	var subs []sockSub
	for i, conv := range chats {
		subs = append(subs, sockSub{conv: i, url: conv, user: m.users[2*i]}, sockSub{conv: i, url: conv, user: m.users[2*i+1]})
	}
	m.p.resetPeakRSS()
	t0 := time.Now()
	ss := m.connect(ctx, subs)
	defer ss.close()
	r.ConnectS = time.Since(t0).Seconds()
	log.Printf("messaging: %d sockets connected in %v (%d failed)", len(subs), time.Since(t0).Round(time.Millisecond), ss.failed)

	sends := make([]sendRec, mc.Messages)
	interval := time.Duration(float64(time.Second) / mc.Rate)
	sem := make(chan struct{}, 256)
	var wg sync.WaitGroup
	cpu0 := m.p.cpuTime()
	start := time.Now()
	for k := range mc.Messages {
		due := start.Add(time.Duration(k) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		sem <- struct{}{}
		r.LateMS = max(r.LateMS, float64(time.Since(due).Microseconds())/1000)
		wg.Go(func() {
			defer func() { <-sem }()
			c := k % mc.Chats
			u := m.users[2*c+(k/mc.Chats)%2]
			sends[k] = m.send(ctx, ss.base, u.apikey, chats[c], "lat-"+strconv.Itoa(k), fmt.Sprintf("latency message %d", k))
		})
	}
	wg.Wait()
	want := 0
	for _, s := range sends {
		if s.err == nil {
			want += 2
		}
	}
	ss.wait(int64(want), deliveryWait)
	r.CPUPerMsg = float64((m.p.cpuTime() - cpu0).Microseconds()) / float64(max(1, mc.Messages))
	r.PeakRSSMB = m.p.peakRSS()
	ss.close()

	// Every delivery's latency; a message counts as delivered once both
	// sockets of its chat have it.
	convOf := func(k int) int { return k % mc.Chats }
	var lat []time.Duration
	got := make([]int, mc.Messages)
	var last time.Duration
	for _, s := range ss.socks {
		for _, rc := range s.got {
			if rc.k < 0 || rc.k >= mc.Messages || sends[rc.k].err != nil {
				continue
			}
			lat = append(lat, rc.at-sends[rc.k].start)
			got[rc.k]++
			last = max(last, rc.at)
		}
	}
	r.errorCounts = ss.check(sends, convOf)
	full := 0
	for _, n := range got {
		if n == 2 {
			full++
		}
	}
	slices.Sort(lat)
	r.Deliveries = len(lat)
	r.P50, r.P99, r.P999 = pct(lat, 0.50), pct(lat, 0.99), pct(lat, 0.999)
	r.SendP50, r.SendP99 = sendPct(sends)
	if first := firstStart(sends); last > first {
		r.PerSecond = float64(full) / (last - first).Seconds()
	}
	log.Printf("messaging latency: %d sockets, %.0f msg/s delivered (offered %.0f), p50 %.2f ms p99 %.2f ms p99.9 %.2f ms, errors %d",
		r.Sockets, r.PerSecond, r.Offered, r.P50, r.P99, r.P999, r.Errors)
	return r, nil
}

// fanout makes a group of mc.Group users, connects every member's socket
// and has the creator send mc.GroupMessages, each as soon as the last is
// answered.
func (m *msgBench) fanout(ctx context.Context, mc msgConfig) (fanoutResult, error) {
	r := fanoutResult{Members: mc.Group, Messages: mc.GroupMessages}
	var contacts []string
	for _, u := range m.users[1:mc.Group] {
		contacts = append(contacts, `{"idsha":"`+u.idsha+`"}`)
	}
	b, err := m.e.call("/chat/create", m.users[0].apikey, `{"type":"group","name":"bench group","contacts":[`+strings.Join(contacts, ",")+`]}`)
	if err != nil {
		return r, err
	}
	group, _ := b["conversationId"].(string)
	var subs []sockSub
	for _, u := range m.users[:mc.Group] {
		subs = append(subs, sockSub{url: group, user: u})
	}
	m.p.resetPeakRSS()
	ss := m.connect(ctx, subs)
	defer ss.close()

	sends := make([]sendRec, mc.GroupMessages)
	cpu0 := m.p.cpuTime()
	want := 0
	for k := range sends {
		sends[k] = m.send(ctx, ss.base, m.users[0].apikey, group, "fan-"+strconv.Itoa(k), fmt.Sprintf("group message %d", k))
		if sends[k].err == nil {
			want += mc.Group
		}
	}
	ss.wait(int64(want), deliveryWait)
	r.CPUPerMsg = float64((m.p.cpuTime() - cpu0).Microseconds()) / float64(max(1, mc.GroupMessages))
	r.PeakRSSMB = m.p.peakRSS()
	ss.close()

	// The sender's own socket (the first) is checked for seqs but is not
	// one of the receivers timed.
	lastAt := make([]time.Duration, len(sends))
	got := make([]int, len(sends))
	deliveries := 0
	var end time.Duration
	for _, s := range ss.socks[1:] {
		for _, rc := range s.got {
			if rc.k < 0 || rc.k >= len(sends) || sends[rc.k].err != nil {
				continue
			}
			lastAt[rc.k] = max(lastAt[rc.k], rc.at)
			got[rc.k]++
			deliveries++
			end = max(end, rc.at)
		}
	}
	var lat []time.Duration
	for k, s := range sends {
		if s.err == nil && got[k] == mc.Group-1 {
			lat = append(lat, lastAt[k]-s.start)
		}
	}
	r.errorCounts = ss.check(sends, func(int) int { return 0 })
	slices.Sort(lat)
	r.P50, r.P99, r.Max = pct(lat, 0.50), pct(lat, 0.99), pct(lat, 1)
	r.SendP50, r.SendP99 = sendPct(sends)
	if first := firstStart(sends); end > first {
		r.DeliveriesPerSecond = float64(deliveries) / (end - first).Seconds()
	}
	log.Printf("messaging fan-out: %d members, %.0f deliveries/s, last receiver p50 %.2f ms p99 %.2f ms, errors %d",
		r.Members, r.DeliveriesPerSecond, r.P50, r.P99, r.Errors)
	return r, nil
}

// sendRec is one message sent: when its request started (since the
// socket set's base), how long it took, its seq, or why it failed.
type sendRec struct {
	start, took time.Duration
	seq         int64
	err         error
}

func (m *msgBench) send(ctx context.Context, base time.Time, apikey, conv, cmid, text string) (s sendRec) {
	req, err := m.e.post("/chat/message/send", apikey, fmt.Sprintf(`{"conversationId":%q,"text":%q,"clientMsgId":%q}`, conv, text, cmid))
	if err != nil {
		return sendRec{err: err}
	}
	s.start = time.Since(base)
	resp, err := m.client.Do(req.WithContext(ctx))
	if err != nil {
		s.err = err
		return s
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	s.took = time.Since(base) - s.start
	var out struct {
		Code int `json:"code"`
		Body struct {
			Message        struct{ Seq int64 } `json:"message"`
			PreviouslySent bool                `json:"previously_sent"`
		} `json:"body"`
	}
	switch {
	case err != nil:
		s.err = err
	case resp.StatusCode != 200 || json.Unmarshal(raw, &out) != nil || out.Code != 0 || out.Body.PreviouslySent || out.Body.Message.Seq <= 0:
		s.err = fmt.Errorf("send: %d %s", resp.StatusCode, raw)
	}
	s.seq = out.Body.Message.Seq
	return s
}

func sendPct(sends []sendRec) (p50, p99 float64) {
	var d []time.Duration
	for _, s := range sends {
		if s.err == nil {
			d = append(d, s.took)
		}
	}
	slices.Sort(d)
	return pct(d, 0.50), pct(d, 0.99)
}

func firstStart(sends []sendRec) time.Duration {
	first := time.Duration(-1)
	for _, s := range sends {
		if s.err == nil && (first < 0 || s.start < first) {
			first = s.start
		}
	}
	return first
}

// sockSub is a socket to open: a member's, on a conversation (conv is its
// index among the measurement's conversations).
type sockSub struct {
	conv int
	url  string // the conversationId
	user poolUser
}

// wsock is one connected socket and the message frames it received.
type wsock struct {
	sockSub
	c     *websocket.Conn
	got   []receipt
	err   error // the socket failed before the measurement closed it
	ready chan error
	done  chan struct{}
}

// receipt is one message frame: its message (k from the clientMsgId, -1
// if not one of ours), seq and arrival since the set's base.
type receipt struct {
	k   int
	seq int64
	at  time.Duration
}

// sockSet is the sockets of one measurement.
type sockSet struct {
	base   time.Time
	socks  []*wsock
	failed int
	frames atomic.Int64
	cancel context.CancelFunc
	closed bool
}

// connect opens every socket, 32 at a time, and waits for each one's
// "ready" frame.
func (m *msgBench) connect(ctx context.Context, subs []sockSub) *sockSet {
	ctx, cancel := context.WithCancel(ctx)
	ss := &sockSet{base: time.Now(), cancel: cancel, socks: make([]*wsock, len(subs))}
	var failed atomic.Int64
	parallel(32, len(subs), func(i int) error {
		s := &wsock{sockSub: subs[i], ready: make(chan error, 1), done: make(chan struct{})}
		ss.socks[i] = s
		h := http.Header{}
		h.Set("Authorization", m.e.c.Auth)
		h.Set("X-WOOS-KEY", s.user.apikey)
		dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
		defer dcancel()
		c, _, err := websocket.Dial(dctx, m.e.url+"/chat/socket?afterSeq=0&conversationId="+url.QueryEscape(s.url), &websocket.DialOptions{HTTPHeader: h})
		if err != nil {
			s.err = err
			close(s.done)
			failed.Add(1)
			return nil
		}
		s.c = c
		go s.read(ctx, ss)
		select {
		case err = <-s.ready:
		case <-dctx.Done():
			err = dctx.Err()
		}
		if err != nil {
			failed.Add(1)
		}
		return nil
	})
	ss.failed = int(failed.Load())
	return ss
}

func (s *wsock) read(ctx context.Context, ss *sockSet) {
	defer close(s.done)
	ready := false
	for {
		_, b, err := s.c.Read(ctx)
		if err != nil {
			if !ready {
				s.ready <- err
			}
			if ctx.Err() == nil {
				s.err = err
			}
			return
		}
		at := time.Since(ss.base)
		var f struct {
			Type    string `json:"type"`
			Message *struct {
				Seq         int64  `json:"seq"`
				ClientMsgID string `json:"clientMsgId"`
			} `json:"message"`
		}
		if json.Unmarshal(b, &f) != nil {
			continue
		}
		switch {
		case f.Type == "ready" && !ready:
			ready = true
			s.ready <- nil
		case f.Type == "message" && f.Message != nil:
			k := -1
			if _, n, ok := strings.Cut(f.Message.ClientMsgID, "-"); ok {
				if v, err := strconv.Atoi(n); err == nil {
					k = v
				}
			}
			s.got = append(s.got, receipt{k: k, seq: f.Message.Seq, at: at})
			ss.frames.Add(1)
		}
	}
}

// wait waits until the sockets have received want message frames in all,
// or for at most d.
func (ss *sockSet) wait(want int64, d time.Duration) {
	deadline := time.Now().Add(d)
	for ss.frames.Load() < want && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
}

// close ends every socket; after it, the receipts may be read.
func (ss *sockSet) close() {
	if ss.closed {
		return
	}
	ss.closed = true
	ss.cancel()
	for _, s := range ss.socks {
		if s == nil {
			continue
		}
		<-s.done
		if s.c != nil {
			s.c.CloseNow()
		}
	}
}

// check counts, per socket, the seqs of the messages sent to its
// conversation that it missed, got twice or got out of order, and the
// sockets that failed.
func (ss *sockSet) check(sends []sendRec, convOf func(k int) int) errorCounts {
	var c errorCounts
	want := map[int][]int64{}
	for k, s := range sends {
		if s.err != nil {
			c.SendErrors++
			continue
		}
		want[convOf(k)] = append(want[convOf(k)], s.seq)
	}
	for _, s := range ss.socks {
		if s.err != nil {
			c.SocketError++
		}
		seen := map[int64]bool{}
		var top int64
		for _, rc := range s.got {
			switch {
			case seen[rc.seq]:
				c.Duplicates++
			case rc.seq < top:
				c.OutOfOrder++
			}
			seen[rc.seq] = true
			top = max(top, rc.seq)
		}
		for _, seq := range want[s.conv] {
			if !seen[seq] {
				c.Missing++
			}
		}
	}
	c.sum()
	return c
}

// parallel runs f(0) … f(n-1) on conc goroutines and returns the first error.
func parallel(conc, n int, f func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(conc, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}
