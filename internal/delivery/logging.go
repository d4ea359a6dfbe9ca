package delivery

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"
)

// LogSender is the transport of a channel with no provider configured: it
// records that the message would have been sent. It never logs the link
// (its token is a secret) and masks most of the address.
type LogSender struct {
	Log *slog.Logger
	n   atomic.Int64
}

// Send logs m and returns a local id.
func (s *LogSender) Send(_ context.Context, m Message) (string, error) {
	id := "log-" + strconv.FormatInt(s.n.Add(1), 10)
	s.Log.Info("delivery not sent: no transport configured for this channel",
		"channel", m.Recipient.Channel, "to", Mask(m.Recipient.Address), "bot", m.BotName, "provider_id", id)
	return id, nil
}

// Mask hides most of an address or phone number for logs:
// "ana@example.com" → "a***@example.com", "+34600111222" → "+34*******22".
func Mask(addr string) string {
	if at := strings.LastIndexByte(addr, '@'); at > 0 {
		_, first := utf8.DecodeRuneInString(addr)
		return addr[:first] + "***" + addr[at:]
	}
	if len(addr) <= 5 {
		return strings.Repeat("*", len(addr))
	}
	return addr[:3] + strings.Repeat("*", len(addr)-5) + addr[len(addr)-2:]
}
