package linkpage

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/realtime"
)

// The web app: a person signs in at /app with their user's virtualUser and
// pass, sees their chats and opens any of them at /app/c/{conversation},
// which runs the same chat handlers as a link's web chat.

const appCookie = "imbee_app"

// AppSessionLife is how long a sign-in lasts unless the person signs out
// or the user's credentials are rotated first.
const AppSessionLife = 7 * 24 * time.Hour

// maxVirtualUser bounds the sign-in form's virtualUser: an idsha is 40
// characters; anything much longer is refused before a lookup or a limit
// bucket is spent on it.
const maxVirtualUser = 128

// appHome is GET /app: the signed-in person's chats, or the sign-in form.
func (h *Handler) appHome(w http.ResponseWriter, r *http.Request) {
	sess, ok, err := h.appSession(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !ok {
		h.render(w, http.StatusOK, "signin", signinPage{page: newPage(r, "", text("signin.title"))})
		return
	}
	chats, err := h.store.Chats(r.Context(), sess.CorporateID, sess.UserIDSha, maxAppChats)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	all, err := h.store.ListBots(r.Context(), sess.CorporateID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	bots := make(map[string]string, len(all))
	for _, b := range all {
		bots[b.IDSha] = b.Name
	}
	p := newPage(r, sess.CorporateLanguage, func(t texts) string { return fmt.Sprintf(t["chats.title%"], sess.CorporateName) })
	page := chatsPage{page: p, CorporateName: sess.CorporateName, Me: sess.UserIDSha, VAPIDPublic: h.cfg.VAPIDPublic}
	for _, b := range all {
		if !b.Revoked {
			page.Bots = append(page.Bots, botItem{IDSha: b.IDSha, Name: b.Name})
		}
	}
	for _, cs := range chats {
		item := chatItem{ConversationID: cs.Conversation.PublicID, Name: chatName(p.T, cs.Conversation, sess.UserIDSha, bots), Unread: max(0, cs.LastSeq-cs.ReadSeq)}
		if m := cs.LastMessage; m != nil {
			item.Last = m.Text
			if m.Sender == sess.UserIDSha {
				item.Last = fmt.Sprintf(p.T["chats.you%"], m.Text)
			}
		}
		page.Chats = append(page.Chats, item)
	}
	h.render(w, http.StatusOK, "chats", page)
}

// startChat is POST /app/chats (form: bot): the signed-in user's 1:1 chat
// with one of the corporate's bots, made on the first call, then opened.
func (h *Handler) startChat(w http.ResponseWriter, r *http.Request) {
	if h.crossSite(r) {
		h.ended(w, r, http.StatusForbidden, "crosssignin")
		return
	}
	sess, ok, err := h.appSession(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !ok {
		http.Redirect(w, r, "/app", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	bot := r.FormValue("bot")
	// Only a bot of the corporate that is not retired: the form offers
	// nothing else, and a user's idsha here must not make a chat.
	bots, err := h.store.ListBots(r.Context(), sess.CorporateID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !slices.ContainsFunc(bots, func(b imbee.Bot) bool { return b.IDSha == bot && !b.Revoked }) {
		h.ended(w, r, http.StatusNotFound, "nobot")
		return
	}
	conv, err := h.writes.CreateConversation(r.Context(), imbee.ChatRequest{CorporateID: sess.CorporateID, Creator: sess.UserIDSha, Type: imbee.ConversationChat, Contacts: []string{bot}})
	if isNotFound(err) { // retired since
		h.ended(w, r, http.StatusNotFound, "nobot")
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/app/c/"+conv.PublicID, http.StatusSeeOther)
}

// maxAppChats is how many chats the list shows, latest first.
const maxAppChats = 200

// botNames maps the corporate's bots' idsha to their names.
func (h *Handler) botNames(r *http.Request, corporateID int64) (map[string]string, error) {
	bots, err := h.store.ListBots(r.Context(), corporateID)
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(bots))
	for _, b := range bots {
		names[b.IDSha] = b.Name
	}
	return names, nil
}

// chatName is what a chat is called for me: a group's name, or the other
// member of a 1:1 (a bot by its name).
func chatName(t texts, c imbee.Conversation, me string, bots map[string]string) string {
	if c.Type == imbee.ConversationGroup && c.Name != "" {
		return c.Name
	}
	var others []string
	for _, m := range c.Members {
		if m.IDSha == me {
			continue
		}
		name := m.Name
		if name == "" {
			name = bots[m.IDSha]
		}
		if name == "" {
			name = fmt.Sprintf(t["chats.user%"], m.IDSha[:min(8, len(m.IDSha))])
		}
		others = append(others, name)
	}
	if len(others) == 0 {
		return t["chats.self"]
	}
	return strings.Join(others, ", ")
}

// signIn is POST /app: virtualUser and pass from the form. A failure shows
// the form again and spends a try of the user's and of the client
// address's limits; past either, the form says when to try again and no
// pass is checked. Success opens a new session (a new cookie: one that an
// attacker planted beforehand is replaced) and leads to the chats.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request) {
	if h.crossSite(r) {
		h.ended(w, r, http.StatusForbidden, "crosssignin")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		p := newPage(r, "", text("signin.title"))
		h.render(w, http.StatusBadRequest, "signin", signinPage{page: p, Error: p.T["signin.unreadable"]})
		return
	}
	user, pass := strings.TrimSpace(r.PostForm.Get("virtualUser")), r.PostForm.Get("pass")
	form := signinPage{page: newPage(r, "", text("signin.title")), VirtualUser: user}
	if user == "" || pass == "" || len(user) > maxVirtualUser || len(pass) > maxVirtualUser {
		form.Error = form.T["signin.missing"]
		h.render(w, http.StatusUnauthorized, "signin", form)
		return
	}
	// A try is taken before the pass is checked, so that concurrent tries
	// cannot overrun the limits, and given back when it succeeds.
	addr := h.cfg.Clients.Key(r)
	wait, ok, err := h.takeSignInTry(r.Context(), user, addr)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !ok {
		w.Header().Set("Retry-After", retryAfter(wait))
		form.Error = fmt.Sprintf(form.T["signin.limited%"], retryAfter(wait))
		h.render(w, http.StatusTooManyRequests, "signin", form)
		return
	}
	sess, err := h.writes.SignIn(r.Context(), user, pass, AppSessionLife)
	var e *imbee.Error
	if errors.As(err, &e) && e.Code == imbee.CodeAuth {
		form.Error = form.T["signin.wrong"]
		h.render(w, http.StatusUnauthorized, "signin", form)
		return
	}
	if rerr := errors.Join(h.signInFailures.byUser.Return(r.Context(), user), h.signInFailures.byAddr.Return(r.Context(), addr)); rerr != nil {
		h.log.Warn("give back a sign-in try", "err", rerr)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     appCookie,
		Value:    sess.Token,
		Path:     "/app",
		Expires:  sess.ExpiresAt,
		HttpOnly: true,
		Secure:   h.secure,
		SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, "/app", http.StatusSeeOther)
}

// takeSignInTry takes a try from the user's and the address's limits; when
// either has none left it takes nothing and says how long to wait.
func (h *Handler) takeSignInTry(ctx context.Context, user string, addr netip.Prefix) (time.Duration, bool, error) {
	f := h.signInFailures
	wait, ok, err := f.byUser.Take(ctx, user)
	if err != nil || !ok {
		return wait, false, err
	}
	if wait, ok, err := f.byAddr.Take(ctx, addr); err != nil || !ok {
		return wait, false, errors.Join(err, f.byUser.Return(ctx, user))
	}
	return 0, true, nil
}

// signOut is POST /app/signout: the session ends on every server (its
// sockets close) and the cookie is cleared.
func (h *Handler) signOut(w http.ResponseWriter, r *http.Request) {
	if h.crossSite(r) {
		h.ended(w, r, http.StatusForbidden, "crosssignin")
		return
	}
	if c, err := r.Cookie(appCookie); err == nil {
		if err := h.writes.SignOut(r.Context(), c.Value); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: appCookie, Value: "", Path: "/app", MaxAge: -1, HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/app", http.StatusSeeOther)
}

// appSession is the request's live app session; ok is false without one.
func (h *Handler) appSession(r *http.Request) (sess imbee.AppSession, ok bool, err error) {
	c, err := r.Cookie(appCookie)
	if err != nil {
		return sess, false, nil
	}
	sess, err = h.store.AppSessionByToken(r.Context(), c.Value)
	var e *imbee.Error
	if errors.As(err, &e) && e.Code == imbee.CodeNotFound {
		return sess, false, nil
	}
	return sess, err == nil, err
}

// appViewer is the signed-in person of the request, for the chat in its
// path. Only the page (withPage) needs the chat's members and the bots'
// names; its JSON calls and socket check membership alone.
func (h *Handler) appViewer(r *http.Request, withPage bool) (v viewer, ended string, err error) {
	c, err := r.Cookie(appCookie)
	if err != nil {
		return v, endedNone, nil
	}
	sess, err := h.store.AppSessionByToken(r.Context(), c.Value)
	if isNotFound(err) {
		return v, endedSession, nil
	}
	if err != nil {
		return v, "", err
	}
	conversation := r.PathValue("conversation")
	v = viewer{
		corporateID: sess.CorporateID, me: sess.UserIDSha, conversationID: conversation, cookie: c.Value,
		grant: realtime.Grant{CorporateID: sess.CorporateID, ConversationID: conversation,
			Key: "app:" + strconv.FormatInt(sess.ID, 10), UserID: sess.UserID, AppSessionID: sess.ID, Expires: sess.ExpiresAt},
	}
	if !withPage {
		member, err := h.store.IsMember(r.Context(), sess.CorporateID, conversation, sess.UserIDSha)
		if err != nil || !member {
			return viewer{}, endedUnknown, err
		}
		return v, "", nil
	}
	conv, err := h.store.MemberChat(r.Context(), sess.CorporateID, conversation, sess.UserIDSha)
	if isNotFound(err) {
		return viewer{}, endedUnknown, nil
	}
	if err != nil {
		return viewer{}, "", err
	}
	bots, err := h.botNames(r, sess.CorporateID)
	if err != nil {
		return viewer{}, "", err
	}
	p := newPage(r, sess.CorporateLanguage, func(texts) string { return "" })
	name := chatName(p.T, conv, sess.UserIDSha, bots)
	p.Title = name + " · " + sess.CorporateName
	v.page = chatPage{page: p, Heading: name, CorporateName: sess.CorporateName,
		Me: sess.UserIDSha, ConversationID: conv.PublicID, Base: "/app/c/" + conv.PublicID, App: true,
		Until: sess.ExpiresAt.UTC().Format("2006-01-02 15:04 MST")}
	return v, "", nil
}

func isNotFound(err error) bool {
	var e *imbee.Error
	return errors.As(err, &e) && e.Code == imbee.CodeNotFound
}
