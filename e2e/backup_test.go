package e2e

import (
	"database/sql"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imbee/imbee/client"
	"github.com/imbee/imbee/internal/pgtest"
	"github.com/imbee/imbee/internal/store"
)

// TestBackupUnderLoad: "imbee backup", run as its own process while the
// server takes a mixed write load (new users, messages), writes a copy
// that holds every write acknowledged before it began and passes SQLite's
// integrity check; "imbee restore" fills a new database from it, and a
// server on that database honours the credentials, the link and the
// sessions (web chat and web app) made before the backup. A restore under
// another key, or into a database that is not empty, is refused, and so
// are both commands on PostgreSQL.
func TestBackupUnderLoad(t *testing.T) {
	if pgtest.Partitioned() {
		t.Skipf("%s: backups are SQLite's", pgtest.EnvPartitioned)
	}
	dir := t.TempDir()
	live := dbSpec{db: "sqlite:" + filepath.Join(dir, "live.db"), keyFile: filepath.Join(dir, "imbee.key")}
	s := startServerOn(t, live)
	c := s.demo()
	ana, bea := s.newUser(t, c, "ana"), s.newUser(t, c, "bea")
	conv := s.createChat(t, c, ana, client.Contact{IDSha: bea.idsha})
	web := openWebChat(t, s, c, c.bot, "cai")
	app := signInApp(t, s, ana)

	// The load: writers create users and send messages until told to
	// stop, noting each write acknowledged and when its answer came.
	type ack struct {
		user, text string
		at         time.Time
	}
	var (
		mu   sync.Mutex
		acks []ack
		stop = make(chan struct{})
		wg   sync.WaitGroup
	)
	for g := range 4 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("w%d-%d", g, n)
				var a ack
				if g%2 == 0 {
					e := s.post(t, "/third_parties/user/new", c.auth, c.token, map[string]string{"uniqueIdSha": name})
					if e.Status != 200 {
						t.Errorf("user/new under load: %d %s", e.Status, e.Raw)
						return
					}
					a = ack{user: name, at: time.Now()}
				} else {
					e := s.post(t, "/chat/message/send", c.auth, ana.apikey, map[string]any{"conversationId": conv, "text": name})
					if e.Status != 200 {
						t.Errorf("message send under load: %d %s", e.Status, e.Raw)
						return
					}
					a = ack{text: name, at: time.Now()}
				}
				mu.Lock()
				acks = append(acks, a)
				mu.Unlock()
			}
		})
	}
	waitAcks := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			mu.Lock()
			got := len(acks)
			mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d writes acknowledged in 30 s", got)
			}
		}
	}
	waitAcks(100)
	copyPath := filepath.Join(dir, "backups", "imbee-copy.db")
	os.Mkdir(filepath.Dir(copyPath), 0o700)
	began := time.Now()
	out, err := exec.Command(imbeeBinary(t), "backup", "--to", copyPath, "--db", live.db, "--key-file", live.keyFile).CombinedOutput()
	if err != nil {
		t.Fatalf("imbee backup: %v\n%s", err, out)
	}
	mu.Lock()
	during := len(acks)
	mu.Unlock()
	waitAcks(during + 50) // writes go on after the backup
	close(stop)
	wg.Wait()
	if strings.Contains(string(out), "\r") {
		t.Errorf("the backup drew a progress line with its output not on a terminal:\n%q", out)
	}
	if !strings.Contains(string(out), "server key fingerprint: ") || !strings.Contains(string(out), live.keyFile) {
		t.Errorf("the backup's report does not name the key's fingerprint and remind of the key file:\n%s", out)
	}
	if st, err := os.Stat(copyPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the copy: %v, mode %v, want 0600", err, st.Mode().Perm())
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, "backups", ".*")); len(leftovers) > 0 {
		t.Errorf("temporary files left beside the copy: %v", leftovers)
	}
	copyDB, err := sql.Open(store.SQLiteDriver, store.SQLiteDSN(copyPath, "query_only=1"))
	if err != nil {
		t.Fatal(err)
	}
	var integrity string
	if err := copyDB.QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("the copy's integrity check: %q %v", integrity, err)
	}
	// A snapshot: each writer's writes in the copy are a prefix of what
	// it wrote, one after another.
	inCopy := map[int][]int{}
	for _, q := range []string{`SELECT unique_id FROM users`, `SELECT text FROM messages`} {
		rows, err := copyDB.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var name string
			var g, n int
			rows.Scan(&name)
			if _, err := fmt.Sscanf(name, "w%d-%d", &g, &n); err == nil {
				inCopy[g] = append(inCopy[g], n)
			}
		}
		rows.Close()
	}
	for g, ns := range inCopy {
		slices.Sort(ns)
		for i, n := range ns {
			if n != i {
				t.Errorf("writer %d's writes in the copy are not a prefix of what it wrote: %d missing, %d there", g, i, n)
				break
			}
		}
	}
	copyDB.Close()

	// Restore into a new database, under the same key; a server on it.
	restored := dbSpec{db: "sqlite:" + filepath.Join(dir, "restored.db"), keyFile: live.keyFile}
	restore := func(d dbSpec) (string, error) {
		out, err := exec.Command(imbeeBinary(t), "restore", "--from", copyPath, "--db", d.db, "--key-file", d.keyFile).CombinedOutput()
		return string(out), err
	}
	if out, err := restore(restored); err != nil {
		t.Fatalf("imbee restore: %v\n%s", err, out)
	}
	r := startServerOn(t, restored)
	var before []ack
	for _, a := range acks {
		if a.at.Before(began) {
			before = append(before, a)
		}
	}
	texts := map[string]bool{}
	for after := int64(0); ; {
		page, err := r.client(t, c).AsUser(ana.apikey).ListMessages(t.Context(), client.ListMessagesRequest{ConversationID: conv, AfterSeq: &after, Limit: 200})
		if err != nil {
			t.Fatalf("list the restored messages: %v", err)
		}
		for _, m := range page.Messages {
			texts[m.Text] = true
			after = m.Seq
		}
		if !page.HasMore {
			break
		}
	}
	users, messages := 0, 0
	for _, a := range before {
		if a.text != "" {
			messages++
			if !texts[a.text] {
				t.Errorf("message %q, acknowledged %v before the backup began, is not in the restored copy", a.text, began.Sub(a.at))
			}
			continue
		}
		users++
		e := r.post(t, "/third_parties/user/new", c.auth, c.token, map[string]string{"uniqueIdSha": a.user})
		if e.Status != 200 || e.Body["previously_registered"] != true {
			t.Errorf("user %q, acknowledged %v before the backup began, is not in the restored copy: %s", a.user, began.Sub(a.at), e.Raw)
		}
	}
	t.Logf("%d writes acknowledged before the backup began (%d users, %d messages), %d in all", len(before), users, messages, len(acks))
	if users == 0 || messages == 0 {
		t.Fatalf("the load wrote %d users and %d messages before the backup: it tested nothing", users, messages)
	}

	// Credentials, the link and the sessions work on the restored server.
	if _, err := r.client(t, c).AsUser(bea.apikey).CreateChat(t.Context(), client.CreateChatRequest{Type: "chat", Contacts: []client.Contact{{IDSha: ana.idsha}}}); err != nil {
		t.Errorf("bea's apikey on the restored server: %v", err)
	}
	if code, _, _ := page(t, browser(t), "GET", r.URL+strings.TrimPrefix(web.link, s.URL)); code != http.StatusOK {
		t.Errorf("the link on the restored server: HTTP %d", code)
	}
	if code, body := chatCall(t, r, "GET", "/w/"+web.conv+"/messages", web.cookie, ""); code != http.StatusOK {
		t.Errorf("the web chat's session on the restored server: HTTP %d %s", code, body)
	}
	if code, body := chatCall(t, r, "GET", "/app", app, ""); code != http.StatusOK || !strings.Contains(body, `class="chats"`) {
		t.Errorf("the web app's session on the restored server: HTTP %d, chat list shown: %v", code, strings.Contains(body, `class="chats"`))
	}

	// Refusals.
	if out, err := restore(restored); err == nil || !strings.Contains(out, "not empty") {
		t.Errorf("a restore into a database in use: %v\n%s", err, out)
	}
	otherKey := filepath.Join(dir, "other.key")
	if err := os.WriteFile(otherKey, []byte(base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := restore(dbSpec{db: "sqlite:" + filepath.Join(dir, "other.db"), keyFile: otherKey}); err == nil || !strings.Contains(out, "another server key") {
		t.Errorf("a restore under another key: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "other.db")); !os.IsNotExist(err) {
		t.Errorf("a refused restore left a database behind: %v", err)
	}
	for _, cmd := range [][]string{{"backup", "--to", copyPath + ".pg"}, {"restore", "--from", copyPath}} {
		out, err := exec.Command(imbeeBinary(t), append(cmd, "--db", "postgres://imbee@db.invalid/imbee", "--key-file", live.keyFile)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "pg_dump") {
			t.Errorf("imbee %s on PostgreSQL: %v\n%s", cmd[0], err, out)
		}
	}
}
