package linkpage

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/imbee/imbee"
)

// agentClass sorts a user-agent into the classes of a link's audit trail:
// who opened it matters (a mail scanner's visit is not the person's), the
// string itself is not kept.
func agentClass(ua string) string {
	l := strings.ToLower(ua)
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(l, s) {
				return true
			}
		}
		return false
	}
	switch {
	case l == "":
		return "unknown"
	// Mail security scanners and link previewers fetch links on a
	// person's behalf, before or instead of them.
	case has("safelinks", "safe links", "microsoft office", "ms-office", "bingpreview", "proofpoint", "mimecast",
		"barracuda", "forcepoint", "sophos", "trendmicro", "symantec", "fortiguard", "cisco", "googleimageproxy",
		"google-safety", "slackbot", "facebookexternalhit", "whatsapp", "telegrambot", "twitterbot",
		"linkedinbot", "discordbot", "skypeuripreview", "preview"):
		return "scanner"
	case has("bot", "crawler", "spider", "curl/", "wget/", "python-", "go-http-client", "java/", "okhttp",
		"libwww", "httpclient", "headlesschrome", "axios", "node-fetch", "postman"):
		return "bot"
	case has("mobile", "android", "iphone", "ipad"):
		return "mobile"
	case strings.HasPrefix(l, "mozilla/") || strings.HasPrefix(l, "opera/"):
		return "browser"
	}
	return "unknown"
}

// attempt describes r for a link's audit trail.
func (h *Handler) attempt(r *http.Request) imbee.LinkAttempt {
	return imbee.LinkAttempt{Method: r.Method, Address: h.cfg.Clients.Addr(r).String(), Agent: agentClass(r.UserAgent())}
}

// Views of the landing page are recorded in batches, off the request: a
// GET stays a read, and a burst of them costs one write. Spends are
// recorded with the spend, in its transaction.
const (
	viewQueue = 4096
	viewBatch = 256
	viewEvery = 500 * time.Millisecond
)

// recordView queues a page view; when the queue is full (a flood), the
// view is dropped and counted.
func (h *Handler) recordView(a imbee.LinkAttempt) {
	select {
	case h.views <- a:
	default:
		h.dropped.Add(1)
	}
}

// Run records queued page views until ctx ends, then flushes what is left.
func (h *Handler) Run(ctx context.Context) {
	t := time.NewTicker(viewEvery)
	defer t.Stop()
	var batch []imbee.LinkAttempt
	flush := func() {
		if n := h.dropped.Swap(0); n > 0 {
			h.log.Warn("link page views not recorded: queue full", "count", n)
		}
		if len(batch) == 0 {
			return
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := h.writes.RecordLinkAttempts(wctx, batch); err != nil {
			h.log.Error("record link page views", "err", err, "count", len(batch))
		}
		batch = batch[:0]
	}
	for {
		select {
		case a := <-h.views:
			if batch = append(batch, a); len(batch) >= viewBatch {
				flush()
			}
		case <-t.C:
			flush()
		case <-ctx.Done():
			for {
				select {
				case a := <-h.views:
					batch = append(batch, a)
				default:
					flush()
					return
				}
			}
		}
	}
}
