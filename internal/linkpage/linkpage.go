// Package linkpage serves the pages people see behind a web access link:
// the landing page (GET spends nothing, so mail scanners that fetch every
// link cannot use it up), the POST that spends one use and opens a session,
// and the web chat that session opens. These are pages for people: HTML,
// not the API's JSON envelope.
package linkpage

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/store"
)

//go:embed templates/*.html
var templates embed.FS

var pages = template.Must(template.ParseFS(templates, "templates/*.html"))

// Store is what the pages need from storage.
type Store interface {
	LinkByToken(ctx context.Context, token string) (store.LinkPage, error)
	SpendLink(ctx context.Context, token string) (imbee.Session, imbee.LinkState, error)
	SessionByToken(ctx context.Context, token string) (imbee.Session, error)
}

// Handler serves /l/{token} and /w/{conversation}.
type Handler struct {
	store  Store
	secure bool // set the cookie's Secure flag (public URL is https)
	now    func() time.Time
	log    *slog.Logger
	mux    *http.ServeMux
}

// New returns the pages' handler. publicURL decides whether cookies are
// marked Secure.
func New(s Store, publicURL string, now func() time.Time, log *slog.Logger) *Handler {
	if now == nil {
		now = time.Now
	}
	h := &Handler{store: s, secure: strings.HasPrefix(publicURL, "https://"), now: now, log: log, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /l/{token}", h.landing) // GET also answers HEAD
	h.mux.HandleFunc("POST /l/{token}", h.spend)
	h.mux.HandleFunc("GET /w/{conversation}", h.chat)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.ended(w, http.StatusNotFound, "Page not found", "There is nothing at this address.")
	})
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	// The URL holds a secret: keep it out of caches, referrers and indexes.
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Robots-Tag", "noindex, nofollow")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'")
	h.mux.ServeHTTP(w, r)
}

const cookieName = "imbee_session"

func (h *Handler) landing(w http.ResponseWriter, r *http.Request) {
	p, err := h.store.LinkByToken(r.Context(), r.PathValue("token"))
	if err != nil {
		h.fail(w, err)
		return
	}
	if st := p.Link.State(h.now()); st != imbee.LinkActive {
		h.linkEnded(w, st)
		return
	}
	h.render(w, http.StatusOK, "landing", map[string]any{
		"Title":         "Chat with " + p.BotName,
		"BotName":       p.BotName,
		"CorporateName": p.CorporateName,
		"UsesLeft":      p.Link.MaxUses - p.Link.Uses,
		"DateLimit":     p.Link.DateLimit,
	})
}

func (h *Handler) spend(w http.ResponseWriter, r *http.Request) {
	sess, st, err := h.store.SpendLink(r.Context(), r.PathValue("token"))
	if err != nil {
		h.fail(w, err)
		return
	}
	if st != imbee.LinkActive {
		h.linkEnded(w, st)
		return
	}
	// One cookie per conversation, scoped to its chat page, so that links
	// to several bots can be open side by side.
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Value:    sess.Token,
		Path:     "/w/" + sess.ConversationID,
		Expires:  sess.ExpiresAt,
		HttpOnly: true,
		Secure:   h.secure,
		SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, "/w/"+sess.ConversationID, http.StatusSeeOther)
}

func (h *Handler) chat(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		h.ended(w, http.StatusUnauthorized, "Open your link", "This chat opens from the link you were sent. Open that link again to continue.")
		return
	}
	sess, err := h.store.SessionByToken(r.Context(), c.Value)
	var e *imbee.Error
	if errors.As(err, &e) && e.Code == imbee.CodeNotFound || err == nil && sess.ConversationID != r.PathValue("conversation") {
		h.ended(w, http.StatusGone, "This session has ended", "Your chat session has ended or the link was withdrawn.")
		return
	}
	if err != nil {
		h.fail(w, err)
		return
	}
	h.render(w, http.StatusOK, "chat", map[string]any{
		"Title":         sess.BotName + " · " + sess.CorporateName,
		"BotName":       sess.BotName,
		"CorporateName": sess.CorporateName,
		"Until":         sess.ExpiresAt.UTC().Format("2006-01-02 15:04 MST"),
	})
}

func (h *Handler) linkEnded(w http.ResponseWriter, st imbee.LinkState) {
	switch st {
	case imbee.LinkUsedUp:
		h.ended(w, http.StatusGone, "This link has been used up", "It has been opened as many times as it allows.")
	case imbee.LinkExpired:
		h.ended(w, http.StatusGone, "This link has expired", "Its time to be used has passed.")
	default:
		h.ended(w, http.StatusGone, "This link was withdrawn", "Whoever sent it has cancelled it.")
	}
}

func (h *Handler) fail(w http.ResponseWriter, err error) {
	var e *imbee.Error
	if errors.As(err, &e) && e.Code == imbee.CodeNotFound {
		h.ended(w, http.StatusNotFound, "Link not found", "This link does not exist. Check that it was copied whole.")
		return
	}
	h.log.Error("link page", "err", err)
	h.ended(w, http.StatusInternalServerError, "Something went wrong", "Please try again in a moment.")
}

func (h *Handler) ended(w http.ResponseWriter, status int, title, msg string) {
	h.render(w, status, "ended", map[string]any{"Title": title, "Message": msg})
}

// bufs holds render buffers: a page is rendered whole before it is sent, so
// that a failure can still answer 500 and the response has a length.
var bufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (h *Handler) render(w http.ResponseWriter, status int, name string, data map[string]any) {
	buf := bufs.Get().(*bytes.Buffer)
	defer func() { buf.Reset(); bufs.Put(buf) }()
	if err := pages.ExecuteTemplate(buf, name, data); err != nil {
		h.log.Error("render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
