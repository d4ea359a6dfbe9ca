package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imbee/imbee"
)

// benchStore is a store with one corporate, one bot and a user, for the
// hot-path benchmarks.
func benchStore(b *testing.B) (*Store, imbee.Corporate, imbee.CorporateCredentials, imbee.Bot) {
	b.Helper()
	s := mustOpen(b, nil)
	ctx := context.Background()
	c, creds, err := s.CreateCorporate(ctx, "Bench", "UTC")
	if err != nil {
		b.Fatal(err)
	}
	bot, err := s.CreateBot(ctx, c.ID, "Bot")
	if err != nil {
		b.Fatal(err)
	}
	return s, c, creds, bot
}

func BenchmarkAuthenticate(b *testing.B) {
	s, _, creds, _ := benchStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Authenticate(ctx, creds.Auth, creds.CorporateToken); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRegisterUser(b *testing.B) {
	s, c, creds, _ := benchStore(b)
	ctx := context.Background()
	dev := &imbee.Device{Platform: "ios", DeviceName: "bench", HardwareID: "hw", OSVersion: "18"}
	b.Run("New", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, _, err := s.RegisterUser(ctx, c.ID, fmt.Sprintf("new-%d", i), dev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Repeat", func(b *testing.B) {
		if _, _, err := s.RegisterUser(ctx, c.ID, "repeat", dev); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, _, found, err := s.KnownUser(ctx, creds.Auth, creds.CorporateToken, "repeat", dev); err != nil || !found {
				b.Fatal(found, err)
			}
		}
	})
	b.Run("NewParallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(16) // writers queue up and share commits
		var n atomicCounter
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, _, err := s.RegisterUser(ctx, c.ID, fmt.Sprintf("par-%d", n.next()), dev); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func BenchmarkIssueLink(b *testing.B) {
	s, c, _, bot := benchStore(b)
	ctx := context.Background()
	req := func(user string) imbee.LinkRequest {
		return imbee.LinkRequest{CorporateID: c.ID, UniqueID: user, BotIDSha: bot.IDSha, MaxUses: 1000,
			Recipients: []imbee.Recipient{{Channel: imbee.ChannelMail, Address: "a@example.com"}},
			DateLimit:  "2099-01-01", ExpiresAt: time.Now().AddDate(1, 0, 0)}
	}
	b.Run("New", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := s.IssueLink(ctx, req(fmt.Sprintf("l-%d", i))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Repeat", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.IssueLink(ctx, req("same")); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkLinkPages(b *testing.B) {
	s, c, _, bot := benchStore(b)
	ctx := context.Background()
	l, err := s.IssueLink(ctx, imbee.LinkRequest{CorporateID: c.ID, UniqueID: "u", BotIDSha: bot.IDSha, MaxUses: 1000,
		DateLimit: "2099-01-01", ExpiresAt: time.Now().AddDate(1, 0, 0)})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("LinkByToken", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.LinkByToken(ctx, l.Token); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("SpendLink", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, st, err := s.SpendLink(ctx, l.Token, testAttempt); err != nil || st != imbee.LinkActive {
				// Uses run out after 1000: issue a fresh link then.
				l, err = s.IssueLink(ctx, imbee.LinkRequest{CorporateID: c.ID, UniqueID: "u", BotIDSha: bot.IDSha, MaxUses: 1000,
					DateLimit: "2099-01-01", ExpiresAt: time.Now().AddDate(1, 0, 0)})
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

func BenchmarkCreateConversation(b *testing.B) {
	s, c, creds, _ := benchStore(b)
	ctx := context.Background()
	a, _, _ := s.RegisterUser(ctx, c.ID, "a", nil)
	var others []imbee.User
	for i := range 2000 {
		u, _, err := s.RegisterUser(ctx, c.ID, fmt.Sprintf("o-%d", i), nil)
		if err != nil {
			b.Fatal(err)
		}
		others = append(others, u)
	}
	if _, err := s.CreateConversation(ctx, imbee.ChatRequest{CorporateID: c.ID, Creator: a.IDSha, Type: imbee.ConversationChat, Contacts: []string{others[0].IDSha}}); err != nil {
		b.Fatal(err)
	}
	b.Run("Repeat", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, _, found, err := s.KnownChat(ctx, creds.Auth, a.APIKey, others[0].IDSha); err != nil || !found {
				b.Fatal(found, err)
			}
		}
	})
}

type atomicCounter struct{ n atomic.Int64 }

func (c *atomicCounter) next() int64 { return c.n.Add(1) }

// BenchmarkSendMessage is members' sends into 64 1:1 chats from parallel
// goroutines: the message path's one write transaction (with, since the
// revocations log, the horizon read in its first statement).
func BenchmarkSendMessage(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			s, c, _, _ := benchStore(b)
			ctx := context.Background()
			type chat struct{ conv, sender string }
			var chats []chat
			for i := range 64 {
				x, _, err := s.RegisterUser(ctx, c.ID, fmt.Sprintf("x%d", i), nil)
				if err != nil {
					b.Fatal(err)
				}
				y, _, err := s.RegisterUser(ctx, c.ID, fmt.Sprintf("y%d", i), nil)
				if err != nil {
					b.Fatal(err)
				}
				conv, err := s.CreateConversation(ctx, imbee.ChatRequest{CorporateID: c.ID, Creator: x.IDSha, Type: imbee.ConversationChat, Contacts: []string{y.IDSha}})
				if err != nil {
					b.Fatal(err)
				}
				chats = append(chats, chat{conv.PublicID, x.IDSha})
			}
			var n atomicCounter
			b.ReportAllocs()
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ch := chats[int(n.next())%len(chats)]
				for pb.Next() {
					if _, _, err := s.SendMessage(ctx, imbee.MessageRequest{CorporateID: c.ID, ConversationID: ch.conv, Sender: ch.sender, Text: "bench"}); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
