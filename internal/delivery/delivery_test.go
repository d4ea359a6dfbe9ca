package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imbee/imbee"
)

func TestBackoff(t *testing.T) {
	w := NewWorker(nil, nil, "", Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	Backoff := w.Backoff
	for n := 1; n <= 14; n++ {
		base := 30 * time.Second
		for i := 1; i < n; i++ {
			base *= 2
		}
		base = min(base, time.Hour)
		lo, hi := base*8/10, base*12/10
		seen := map[time.Duration]bool{}
		for range 300 {
			d := Backoff(n)
			if d < lo || d > hi {
				t.Fatalf("Backoff(%d) = %v, want within [%v, %v]", n, d, lo, hi)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("Backoff(%d) took only %d values in 300 calls: no jitter", n, len(seen))
		}
	}
	// The cap holds for attempts far past the doubling range.
	if d := Backoff(1000); d > time.Hour*12/10 {
		t.Errorf("Backoff(1000) = %v, beyond the cap", d)
	}
}

func TestMask(t *testing.T) {
	cases := map[string]string{
		"ana@example.com":          "a***@example.com",
		"verylongname@example.com": "v***@example.com",
		"+34600111222":             "+34*******22",
		"12345":                    "*****",
		"":                         "",
	}
	for in, want := range cases {
		if got := Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Mask("+34600111222"); strings.Contains(got, "600111") {
		t.Errorf("Mask shows the number's middle: %q", got)
	}
}

func TestLogSender(t *testing.T) {
	var buf bytes.Buffer
	s := &LogSender{Log: slog.New(slog.NewTextHandler(&buf, nil))}
	const token = "imbl_SECRETTOKENVALUE"
	id1, err := s.Send(context.Background(), Message{
		Recipient: imbee.Recipient{Channel: imbee.ChannelMail, Address: "ana.lopez@example.com"},
		URL:       "http://example.test/l/" + token,
		BotName:   "Helper",
	})
	if err != nil {
		t.Fatal(err)
	}
	id2, _ := s.Send(context.Background(), Message{Recipient: imbee.Recipient{Channel: imbee.ChannelSMS, Address: "+34600111222"}})
	if id1 == "" || id1 == id2 {
		t.Errorf("provider ids %q, %q: want distinct", id1, id2)
	}
	out := buf.String()
	for _, secret := range []string{token, "ana.lopez", "600111"} {
		if strings.Contains(out, secret) {
			t.Errorf("log shows %q:\n%s", secret, out)
		}
	}
}

// fakeQueue is an in-memory Queue.
type fakeQueue struct {
	mu      sync.Mutex
	pending []imbee.Delivery
	leases  []time.Duration
	sent    map[int64]string
	failed  map[int64]failure
	changed chan struct{} // signalled on every outcome
}

type failure struct {
	cause   string
	retryAt time.Time
	dead    bool
}

func newFakeQueue(ds ...imbee.Delivery) *fakeQueue {
	return &fakeQueue{pending: ds, sent: map[int64]string{}, failed: map[int64]failure{}, changed: make(chan struct{}, 1)}
}

func (q *fakeQueue) add(ds ...imbee.Delivery) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending = append(q.pending, ds...)
}

func (q *fakeQueue) ClaimDeliveries(_ context.Context, limit, _ int, lease time.Duration) ([]imbee.Delivery, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.leases = append(q.leases, lease)
	n := min(limit, len(q.pending))
	out := append([]imbee.Delivery(nil), q.pending[:n]...)
	q.pending = q.pending[n:]
	return out, nil
}

func (q *fakeQueue) MarkSent(_ context.Context, d imbee.Delivery, providerID string) error {
	q.mu.Lock()
	q.sent[d.ID] = providerID
	q.mu.Unlock()
	q.signal()
	return nil
}

func (q *fakeQueue) MarkFailed(_ context.Context, _, id int64, cause, _ string, retryAt time.Time, dead bool) error {
	q.mu.Lock()
	q.failed[id] = failure{cause, retryAt, dead}
	q.mu.Unlock()
	q.signal()
	return nil
}

func (q *fakeQueue) signal() {
	select {
	case q.changed <- struct{}{}:
	default:
	}
}

func (q *fakeQueue) outcomes() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.sent) + len(q.failed)
}

// waitOutcomes waits until n deliveries have an outcome.
func (q *fakeQueue) waitOutcomes(t *testing.T, n int, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for q.outcomes() < n {
		select {
		case <-q.changed:
		case <-deadline:
			t.Fatalf("%d of %d deliveries have an outcome after %v", q.outcomes(), n, within)
		}
	}
}

// senderFunc is a Sender that records its messages.
type senderFunc struct {
	mu   sync.Mutex
	msgs []Message
	fn   func(Message) (string, error)
	// fnCtx, when set, is used instead of fn.
	fnCtx func(context.Context, Message) (string, error)
}

func (s *senderFunc) Send(ctx context.Context, m Message) (string, error) {
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	s.mu.Unlock()
	if s.fnCtx != nil {
		return s.fnCtx(ctx, m)
	}
	return s.fn(m)
}

func (s *senderFunc) messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

func mailDelivery(id int64, attempts int) imbee.Delivery {
	return imbee.Delivery{
		ID: id, CorporateID: 1, LinkID: 10,
		Recipient:     imbee.Recipient{Channel: imbee.ChannelMail, Address: fmt.Sprintf("p%d@example.com", id)},
		Status:        imbee.DeliverySending,
		Attempts:      attempts,
		LinkToken:     fmt.Sprintf("imbl_tok%d", id),
		BotName:       "Helper",
		CorporateName: "Acme",
	}
}

var fixedNow = time.Date(2030, 3, 14, 9, 0, 0, 0, time.UTC)

// startWorker runs a worker until the test ends; stop cancels it and waits
// for Run to return.
func startWorker(t *testing.T, q Queue, senders map[imbee.Channel]Sender) (w *Worker, stop func()) {
	t.Helper()
	w = NewWorker(q, senders, "http://example.test/", Config{Now: func() time.Time { return fixedNow }}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Error("Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return w, stop
}

func TestWorker(t *testing.T) {
	t.Run("SuccessMarksSent", func(t *testing.T) {
		q := newFakeQueue(mailDelivery(1, 1))
		s := &senderFunc{fn: func(m Message) (string, error) { return "prov-" + m.Recipient.Address, nil }}
		w, stop := startWorker(t, q, map[imbee.Channel]Sender{imbee.ChannelMail: s})
		w.Kick()
		q.waitOutcomes(t, 1, 5*time.Second)
		stop()
		if got := q.sent[1]; got != "prov-p1@example.com" {
			t.Errorf("MarkSent provider id %q, want prov-p1@example.com", got)
		}
		if len(q.failed) != 0 {
			t.Errorf("failures recorded: %v", q.failed)
		}
		msgs := s.messages()
		if len(msgs) != 1 {
			t.Fatalf("%d messages sent, want 1", len(msgs))
		}
		m := msgs[0]
		if m.URL != "http://example.test/l/imbl_tok1" || m.BotName != "Helper" || m.CorporateName != "Acme" || m.Recipient.Address != "p1@example.com" {
			t.Errorf("message = %+v", m)
		}
		if len(q.leases) == 0 || q.leases[0] <= 0 {
			t.Errorf("claims asked for leases %v", q.leases)
		}
	})

	t.Run("PermanentErrorIsDeadAtOnce", func(t *testing.T) {
		q := newFakeQueue(mailDelivery(1, 1), mailDelivery(2, 1))
		s := &senderFunc{fn: func(m Message) (string, error) {
			if m.Recipient.Address == "p1@example.com" {
				return "", Permanent(errors.New("mailbox does not exist"))
			}
			return "", fmt.Errorf("provider: %w", Permanent(errors.New("address refused")))
		}}
		w, stop := startWorker(t, q, map[imbee.Channel]Sender{imbee.ChannelMail: s})
		w.Kick()
		q.waitOutcomes(t, 2, 5*time.Second)
		stop()
		for id, cause := range map[int64]string{1: "mailbox does not exist", 2: "address refused"} {
			f, ok := q.failed[id]
			if !ok || !f.dead {
				t.Errorf("delivery %d: %+v (recorded %v), want dead", id, f, ok)
			}
			if !strings.Contains(f.cause, cause) {
				t.Errorf("delivery %d: cause %q, want it to mention %q", id, f.cause, cause)
			}
		}
		if n := len(s.messages()); n != 2 {
			t.Errorf("%d sends, want 2 (one attempt each)", n)
		}
		if len(q.sent) != 0 {
			t.Errorf("sent = %v", q.sent)
		}
	})

	t.Run("TransientErrorIsRetriedLater", func(t *testing.T) {
		q := newFakeQueue(mailDelivery(1, 1), mailDelivery(2, 3))
		s := &senderFunc{fn: func(Message) (string, error) { return "", errors.New("smtp 451 try later") }}
		w, stop := startWorker(t, q, map[imbee.Channel]Sender{imbee.ChannelMail: s})
		w.Kick()
		q.waitOutcomes(t, 2, 5*time.Second)
		stop()
		for id, base := range map[int64]time.Duration{1: 30 * time.Second, 2: 2 * time.Minute} {
			f := q.failed[id]
			if f.dead {
				t.Errorf("delivery %d: dead after a transient error", id)
			}
			if f.cause != "smtp 451 try later" {
				t.Errorf("delivery %d: cause %q", id, f.cause)
			}
			wait := f.retryAt.Sub(fixedNow)
			if wait < base*8/10 || wait > base*12/10 {
				t.Errorf("delivery %d: retry in %v, want %v ±20%%", id, wait, base)
			}
		}
	})

	t.Run("RetryAfterReplacesTheBackoff", func(t *testing.T) {
		q := newFakeQueue(mailDelivery(1, 1), mailDelivery(2, 1))
		s := &senderFunc{fn: func(m Message) (string, error) {
			if m.Recipient.Address == "p1@example.com" {
				return "", RetryAfter(errors.New("429"), 7*time.Second)
			}
			return "", fmt.Errorf("provider: %w", RetryAfter(errors.New("429"), 10*24*time.Hour))
		}}
		w, stop := startWorker(t, q, map[imbee.Channel]Sender{imbee.ChannelMail: s})
		w.Kick()
		q.waitOutcomes(t, 2, 5*time.Second)
		stop()
		if got := q.failed[1].retryAt.Sub(fixedNow); got != 7*time.Second || q.failed[1].dead {
			t.Errorf("retry in %v (dead %v), want exactly the provider's 7 s", got, q.failed[1].dead)
		}
		if got := q.failed[2].retryAt.Sub(fixedNow); got != DefaultMaxRetry {
			t.Errorf("a Retry-After of 10 days: retry in %v, want the cap %v", got, DefaultMaxRetry)
		}
	})

	t.Run("LastAttemptIsDead", func(t *testing.T) {
		q := newFakeQueue(mailDelivery(1, DefaultMaxAttempts-1), mailDelivery(2, DefaultMaxAttempts), mailDelivery(3, DefaultMaxAttempts+2))
		s := &senderFunc{fn: func(Message) (string, error) { return "", errors.New("timeout") }}
		w, stop := startWorker(t, q, map[imbee.Channel]Sender{imbee.ChannelMail: s})
		w.Kick()
		q.waitOutcomes(t, 3, 5*time.Second)
		stop()
		if q.failed[1].dead {
			t.Errorf("attempt %d of %d is dead", DefaultMaxAttempts-1, DefaultMaxAttempts)
		}
		if !q.failed[2].dead || !q.failed[3].dead {
			t.Errorf("attempts >= MaxAttempts not dead: %+v, %+v", q.failed[2], q.failed[3])
		}
	})

	t.Run("SuccessOnLastAttemptIsSent", func(t *testing.T) {
		q := newFakeQueue(mailDelivery(1, DefaultMaxAttempts))
		s := &senderFunc{fn: func(Message) (string, error) { return "ok-1", nil }}
		w, stop := startWorker(t, q, map[imbee.Channel]Sender{imbee.ChannelMail: s})
		w.Kick()
		q.waitOutcomes(t, 1, 5*time.Second)
		stop()
		if q.sent[1] != "ok-1" {
			t.Errorf("sent = %v, failed = %v", q.sent, q.failed)
		}
	})

	t.Run("ChannelWithoutSenderIsDead", func(t *testing.T) {
		d := mailDelivery(1, 1)
		d.Recipient = imbee.Recipient{Channel: imbee.ChannelSMS, Address: "+34600111222"}
		q := newFakeQueue(d)
		s := &senderFunc{fn: func(Message) (string, error) { return "x", nil }}
		w, stop := startWorker(t, q, map[imbee.Channel]Sender{imbee.ChannelMail: s})
		w.Kick()
		q.waitOutcomes(t, 1, 5*time.Second)
		stop()
		if f := q.failed[1]; !f.dead {
			t.Errorf("sms delivery without an sms sender: %+v, want dead", f)
		}
		if len(s.messages()) != 0 {
			t.Error("the mail sender was used for an sms")
		}
	})

	t.Run("KickSendsWithoutWaitingForPoll", func(t *testing.T) {
		q := newFakeQueue()
		s := &senderFunc{fn: func(Message) (string, error) { return "p", nil }}
		w, stop := startWorker(t, q, map[imbee.Channel]Sender{imbee.ChannelMail: s})
		time.Sleep(20 * time.Millisecond) // let the first, empty, claim happen
		q.add(mailDelivery(1, 1))
		start := time.Now()
		w.Kick()
		w.Kick() // never blocks, even when a kick is pending
		q.waitOutcomes(t, 1, DefaultPollInterval/2)
		if d := time.Since(start); d >= DefaultPollInterval/2 {
			t.Errorf("kicked delivery took %v", d)
		}
		stop()
	})

	t.Run("DrainsMoreThanOneBatch", func(t *testing.T) {
		const n = DefaultWorkers + 9
		var ds []imbee.Delivery
		for i := range n {
			ds = append(ds, mailDelivery(int64(i+1), 1))
		}
		q := newFakeQueue(ds...)
		s := &senderFunc{fn: func(Message) (string, error) { return "p", nil }}
		// No kick: Run's first pass must claim batch after batch until
		// one comes back short, without waiting for the next poll.
		_, stop := startWorker(t, q, map[imbee.Channel]Sender{imbee.ChannelMail: s})
		q.waitOutcomes(t, n, DefaultPollInterval/2)
		stop()
		if len(q.sent) != n {
			t.Errorf("%d sent, want %d", len(q.sent), n)
		}
	})

	t.Run("StopWaitsForSendsInFlight", func(t *testing.T) {
		q := newFakeQueue(mailDelivery(1, 1))
		entered, release := make(chan struct{}), make(chan struct{})
		s := &senderFunc{fnCtx: func(ctx context.Context, _ Message) (string, error) {
			close(entered)
			<-release
			// A sender honours its context: the worker must not cancel a
			// send because it is stopping.
			if err := ctx.Err(); err != nil {
				return "", err
			}
			if _, ok := ctx.Deadline(); !ok {
				return "", errors.New("send has no deadline")
			}
			return "late", nil
		}}
		w, stop := startWorker(t, q, map[imbee.Channel]Sender{imbee.ChannelMail: s})
		w.Kick()
		<-entered
		stopped := make(chan struct{})
		go func() { stop(); close(stopped) }()
		select {
		case <-stopped:
			t.Fatal("Run returned while a send was in flight")
		case <-time.After(100 * time.Millisecond):
		}
		close(release)
		<-stopped
		q.mu.Lock()
		defer q.mu.Unlock()
		if q.sent[1] != "late" {
			t.Errorf("send in flight at stop was not recorded as sent: sent %v, failed %v", q.sent, q.failed)
		}
	})
}

// TestFailureLogMasksAddress: providers quote the recipient in their
// errors; the log shows it masked, the ledger keeps the whole text.
func TestFailureLogMasksAddress(t *testing.T) {
	var logs bytes.Buffer
	q := newFakeQueue(mailDelivery(1, 1))
	s := &senderFunc{fn: func(m Message) (string, error) {
		return "", fmt.Errorf("550 affected recipient(s): <%s>", m.Recipient.Address)
	}}
	w := NewWorker(q, map[imbee.Channel]Sender{imbee.ChannelMail: s}, "http://example.test/", Config{Now: func() time.Time { return fixedNow }}, slog.New(slog.NewJSONHandler(&logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	w.Kick()
	q.waitOutcomes(t, 1, 5*time.Second)
	cancel()
	<-done
	if strings.Contains(logs.String(), "p1@example.com") || !strings.Contains(logs.String(), "p***@example.com") {
		t.Errorf("log does not mask the address:\n%s", logs.String())
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if !strings.Contains(q.failed[1].cause, "p1@example.com") {
		t.Errorf("ledger cause %q lost the address", q.failed[1].cause)
	}
}

// TestWorkerSlowSendHoldsOnlyItsSlot: while one send hangs, the worker
// keeps claiming and sending the rest (it never waits for a batch), and a
// shutdown waits for the hanging send to finish.
func TestWorkerSlowSendHoldsOnlyItsSlot(t *testing.T) {
	var ds []imbee.Delivery
	for id := range int64(40) {
		ds = append(ds, mailDelivery(id+1, 1))
	}
	q := newFakeQueue(ds...)
	release := make(chan struct{})
	var finished atomic.Bool
	s := &senderFunc{fn: func(m Message) (string, error) {
		if m.DeliveryID == 1 {
			<-release
			finished.Store(true)
		}
		return "ok", nil
	}}
	w, stop := startWorker(t, q, map[imbee.Channel]Sender{imbee.ChannelMail: s})
	w.Kick()
	q.waitOutcomes(t, 39, 5*time.Second)
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("the worker stopped with a send in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	<-stopped
	if !finished.Load() || len(q.sent) != 40 {
		t.Errorf("after the shutdown: %d sent, the slow send finished: %v", len(q.sent), finished.Load())
	}
}
