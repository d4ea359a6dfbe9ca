package linkpage

import (
	"net/http"

	"golang.org/x/text/language"
)

// The pages speak English and Spanish: the browser's language when it is
// one of them, else the corporate's (when the page knows it), else English.

// texts are one language's strings for the pages, by key. A key ending in
// "%" takes arguments (fmt's verbs).
type texts map[string]string

var catalog = map[string]texts{
	"en": {
		"landing.title%":      "Chat with %s",
		"landing.invite%":     "%s invites you to a conversation with %s.",
		"landing.open":        "Open the chat",
		"landing.once":        "This link can be opened once more.",
		"landing.uses%":       "This link can be opened %d more times.",
		"landing.until%":      "It works until %s.",
		"chat.until%":         "%s · session until %s",
		"chat.older":          "Show earlier messages",
		"chat.log%":           "Conversation with %s",
		"chat.ended.link":     "This chat session has ended. Open your link again, or ask for a new one.",
		"chat.ended.app":      "You have been signed out. Sign in again to continue.",
		"chat.to%":            "Message to %s",
		"chat.placeholder":    "Write a message…",
		"chat.send":           "Send",
		"chat.nojs":           "This chat needs JavaScript.",
		"chat.lost":           "Connection lost: reconnecting…",
		"chat.retrying":       "Not sent yet: retrying…",
		"chat.loadfail":       "Could not load the conversation: retrying…",
		"app.nav":             "App",
		"app.all":             "All chats",
		"app.signout":         "Sign out",
		"signin.title":        "Sign in",
		"signin.intro":        "Sign in with the user id and pass you were given.",
		"signin.user":         "User id",
		"signin.pass":         "Pass",
		"signin.submit":       "Sign in",
		"signin.unreadable":   "The form could not be read. Try again.",
		"signin.missing":      "Enter your user id and pass.",
		"signin.wrong":        "That user id and pass do not match.",
		"signin.limited%":     "Too many failed sign-ins. Try again in %s seconds.",
		"chats.title%":        "Chats · %s",
		"chats.heading":       "Your chats",
		"chats.list":          "Chats",
		"chats.none":          "You have no chats yet.",
		"chats.you%":          "You: %s",
		"chats.unread%":       "%d unread",
		"chats.bots":          "Chat with a bot",
		"chats.with%":         "Chat with %s",
		"chats.user%":         "User %s",
		"chats.self":          "Notes to self",
		"push.button":         "Notify me of new messages in this browser",
		"push.on":             "This browser will tell you of new messages while the app is closed.",
		"push.failed":         "Notifications could not be turned on in this browser.",
		"ended.ask":           "Ask whoever sent it to you for a new one.",
		"notfound.title":      "Page not found",
		"notfound.message":    "There is nothing at this address.",
		"crosslink.title":     "Open your link from its own page",
		"crosslink.message":   "Another site tried to open this link for you. Open the link you were sent directly.",
		"crosssignin.title":   "Sign in from this site",
		"crosssignin.message": "Another site tried to sign you in or out, or to start a chat for you. Open this site directly.",
		"nochat.title":        "Chat not found",
		"nochat.message":      "You have no chat at this address.",
		"nobot.title":         "Bot not found",
		"nobot.message":       "There is no such bot to chat with.",
		"openlink.title":      "Open your link",
		"openlink.message":    "This chat opens from the link you were sent. Open that link again to continue.",
		"sessionend.title":    "This session has ended",
		"sessionend.message":  "Your chat session has ended or the link was withdrawn.",
		"usedup.title":        "This link has been used up",
		"usedup.message":      "It has been opened as many times as it allows.",
		"expired.title":       "This link has expired",
		"expired.message":     "Its time to be used has passed.",
		"withdrawn.title":     "This link was withdrawn",
		"withdrawn.message":   "Whoever sent it has cancelled it.",
		"probes.title":        "Too many attempts",
		"probes.message":      "Too many links that do not exist were tried from your network. Wait a little and open your link again.",
		"nolink.title":        "Link not found",
		"nolink.message":      "This link does not exist. Check that it was copied whole.",
		"error.title":         "Something went wrong",
		"error.message":       "Please try again in a moment.",
	},
	"es": {
		"landing.title%":      "Chatea con %s",
		"landing.invite%":     "%s te invita a una conversación con %s.",
		"landing.open":        "Abrir el chat",
		"landing.once":        "Este enlace se puede abrir una vez más.",
		"landing.uses%":       "Este enlace se puede abrir %d veces más.",
		"landing.until%":      "Funciona hasta el %s.",
		"chat.until%":         "%s · sesión hasta %s",
		"chat.older":          "Ver mensajes anteriores",
		"chat.log%":           "Conversación con %s",
		"chat.ended.link":     "Esta sesión de chat ha terminado. Abre tu enlace de nuevo o pide uno nuevo.",
		"chat.ended.app":      "Se ha cerrado tu sesión. Vuelve a iniciarla para continuar.",
		"chat.to%":            "Mensaje para %s",
		"chat.placeholder":    "Escribe un mensaje…",
		"chat.send":           "Enviar",
		"chat.nojs":           "Este chat necesita JavaScript.",
		"chat.lost":           "Conexión perdida: reconectando…",
		"chat.retrying":       "Aún no enviado: reintentando…",
		"chat.loadfail":       "No se pudo cargar la conversación: reintentando…",
		"app.nav":             "Aplicación",
		"app.all":             "Todos los chats",
		"app.signout":         "Cerrar sesión",
		"signin.title":        "Iniciar sesión",
		"signin.intro":        "Inicia sesión con el identificador de usuario y la clave que te dieron.",
		"signin.user":         "Identificador de usuario",
		"signin.pass":         "Clave",
		"signin.submit":       "Iniciar sesión",
		"signin.unreadable":   "No se pudo leer el formulario. Inténtalo de nuevo.",
		"signin.missing":      "Escribe tu identificador de usuario y tu clave.",
		"signin.wrong":        "El identificador de usuario y la clave no coinciden.",
		"signin.limited%":     "Demasiados intentos fallidos. Vuelve a intentarlo dentro de %s segundos.",
		"chats.title%":        "Chats · %s",
		"chats.heading":       "Tus chats",
		"chats.list":          "Chats",
		"chats.none":          "Aún no tienes chats.",
		"chats.you%":          "Tú: %s",
		"chats.unread%":       "%d sin leer",
		"chats.bots":          "Chatea con un bot",
		"chats.with%":         "Chatear con %s",
		"chats.user%":         "Usuario %s",
		"chats.self":          "Notas para mí",
		"push.button":         "Avisarme de mensajes nuevos en este navegador",
		"push.on":             "Este navegador te avisará de los mensajes nuevos con la aplicación cerrada.",
		"push.failed":         "No se pudieron activar los avisos en este navegador.",
		"ended.ask":           "Pide uno nuevo a quien te lo envió.",
		"notfound.title":      "Página no encontrada",
		"notfound.message":    "No hay nada en esta dirección.",
		"crosslink.title":     "Abre tu enlace desde su propia página",
		"crosslink.message":   "Otro sitio intentó abrir este enlace por ti. Abre directamente el enlace que te enviaron.",
		"crosssignin.title":   "Inicia sesión desde este sitio",
		"crosssignin.message": "Otro sitio intentó iniciar o cerrar tu sesión, o abrir un chat por ti. Abre este sitio directamente.",
		"nochat.title":        "Chat no encontrado",
		"nochat.message":      "No tienes ningún chat en esta dirección.",
		"nobot.title":         "Bot no encontrado",
		"nobot.message":       "No existe ese bot con el que chatear.",
		"openlink.title":      "Abre tu enlace",
		"openlink.message":    "Este chat se abre desde el enlace que te enviaron. Ábrelo de nuevo para continuar.",
		"sessionend.title":    "Esta sesión ha terminado",
		"sessionend.message":  "Tu sesión de chat ha terminado o el enlace fue retirado.",
		"usedup.title":        "Este enlace ya se ha usado",
		"usedup.message":      "Se ha abierto tantas veces como permite.",
		"expired.title":       "Este enlace ha caducado",
		"expired.message":     "Ha pasado el tiempo en que se podía usar.",
		"withdrawn.title":     "Este enlace fue retirado",
		"withdrawn.message":   "Quien lo envió lo ha cancelado.",
		"probes.title":        "Demasiados intentos",
		"probes.message":      "Se han probado desde tu red demasiados enlaces que no existen. Espera un poco y vuelve a abrir tu enlace.",
		"nolink.title":        "Enlace no encontrado",
		"nolink.message":      "Este enlace no existe. Comprueba que se copió entero.",
		"error.title":         "Algo ha fallado",
		"error.message":       "Inténtalo de nuevo en un momento.",
	},
}

var languages = language.NewMatcher([]language.Tag{language.English, language.Spanish})

// pageLang is the language of a page for r: the browser's first that the
// pages speak, else fallback (the corporate's) when the pages speak it,
// else English.
func pageLang(r *http.Request, fallback string) string {
	if tags, _, err := language.ParseAcceptLanguage(r.Header.Get("Accept-Language")); err == nil && len(tags) > 0 {
		if _, i, conf := languages.Match(tags...); conf != language.No {
			return []string{"en", "es"}[i]
		}
	}
	if _, ok := catalog[fallback]; ok {
		return fallback
	}
	return "en"
}

// newPage is a page for r titled with title (built from its language's
// strings); fallback is the corporate's language when the page knows it.
func newPage(r *http.Request, fallback string, title func(t texts) string) page {
	lang := pageLang(r, fallback)
	t := catalog[lang]
	return page{Title: title(t), Lang: lang, T: t}
}

// text is a fixed string of t, for newPage.
func text(key string) func(t texts) string { return func(t texts) string { return t[key] } }
