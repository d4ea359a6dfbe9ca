package store

import (
	"context"
	"testing"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/testkit"
)

// TestLateFailureKeepsSent: a server that stalled past its claim's lease (a
// frozen machine, a long pause) and then records its attempt as failed does
// not queue again a delivery that the server which took it over has sent:
// that would send it once more.
func TestLateFailureKeepsSent(t *testing.T) { testkit.ForEachBackend(t, testLateFailureKeepsSent) }

func testLateFailureKeepsSent(t *testing.T) {
	const lease = time.Minute
	ctx := context.Background()
	clock := testkit.NewClock()
	s := mustOpen(t, clock.Now)
	c := mustCorporate(t, s, "A")
	mustIssue(t, s, linkRequest(c, "ana", mustBot(t, s, c.ID, "A bot"), 1, clock.Now().Add(time.Hour),
		imbee.Recipient{Channel: imbee.ChannelMail, Address: "ana@example.com"}))
	claim := func() []imbee.Delivery {
		t.Helper()
		ds, err := s.ClaimDeliveries(ctx, 4, 4, lease)
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	stalled := claim()
	clock.Advance(lease + time.Second)
	takenOver := claim()
	if len(stalled) != 1 || len(takenOver) != 1 {
		t.Fatalf("claims %v then %v, want the delivery each time", stalled, takenOver)
	}
	if err := s.MarkSent(ctx, []imbee.SentJob{{CorporateID: takenOver[0].CorporateID, ID: takenOver[0].ID, ProviderID: "<1@mail>"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkFailed(ctx, stalled[0].CorporateID, stalled[0].ID, "i/o timeout", "timed out", clock.Now().Add(time.Second), false); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if again := claim(); len(again) != 0 {
		t.Errorf("a sent delivery was claimed again after a late failure: %v", again)
	}
	ds, err := s.Deliveries(ctx, "", 10)
	if err != nil || len(ds) != 1 || ds[0].Status != imbee.DeliverySent || ds[0].ProviderID != "<1@mail>" || ds[0].LastReason != "" {
		t.Fatalf("ledger %+v, %v: want the delivery sent as the second claim recorded it", ds, err)
	}
}
