package main

import (
	"context"
	"path/filepath"
	"time"

	"github.com/imbee/imbee/internal/secret"
	"github.com/imbee/imbee/internal/store"
)

// preload fills a new database through the store's bulk path: the demo
// corporate and bot, then n users, chats and links.
func preload(ctx context.Context, dir string, n int) (creds, error) {
	db := filepath.Join(dir, "imbee.db")
	keys, _, err := secret.LoadOrCreateKeyFile(db + ".key")
	if err != nil {
		return creds{}, err
	}
	s, err := store.Open(ctx, "sqlite:"+db, keys, store.Options{Synchronous: "normal"})
	if err != nil {
		return creds{}, err
	}
	defer s.Close()
	d, _, err := s.Bootstrap(ctx, "Bench Corporate", "Bench Bot")
	if err != nil {
		return creds{}, err
	}
	if err := s.BulkLoad(ctx, d.Corporate.ID, d.Bot.ID, "bulk-", n, time.Now().AddDate(0, 0, 30)); err != nil {
		return creds{}, err
	}
	return creds{Auth: d.Credentials.Auth, Token: d.Credentials.CorporateToken, Bot: d.Bot.IDSha}, nil
}
