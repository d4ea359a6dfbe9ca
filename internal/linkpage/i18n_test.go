package linkpage

import (
	"context"
	"io/fs"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/imbee/imbee"
)

// TestCatalog: both languages have every string, with the same arguments,
// and every string a template asks for exists.
func TestCatalog(t *testing.T) {
	verbs := regexp.MustCompile(`%[a-z]`)
	for key, en := range catalog["en"] {
		es, ok := catalog["es"][key]
		if !ok {
			t.Errorf("%q has no Spanish", key)
			continue
		}
		if a, b := verbs.FindAllString(en, -1), verbs.FindAllString(es, -1); strings.Join(a, "") != strings.Join(b, "") || strings.HasSuffix(key, "%") != (len(a) > 0) {
			t.Errorf("%q: English takes %v, Spanish %v (a key ends in %% exactly when it takes arguments)", key, a, b)
		}
	}
	for key := range catalog["es"] {
		if _, ok := catalog["en"][key]; !ok {
			t.Errorf("%q has no English", key)
		}
	}
	used := regexp.MustCompile(`index \$?\.T "([^"]+)"`)
	err := fs.WalkDir(templates, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(templates, path)
		for _, m := range used.FindAllStringSubmatch(string(b), -1) {
			if _, ok := catalog["en"][m[1]]; !ok {
				t.Errorf("%s asks for %q, which the catalog lacks", path, m[1])
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPagesLanguage: a page speaks the browser's language when it is
// English or Spanish, else the corporate's, else English.
func TestPagesLanguage(t *testing.T) {
	e := setup(t)
	l := e.issue(t, "ana", 3)
	get := func(path, acceptLanguage string) response {
		t.Helper()
		var h map[string]string
		if acceptLanguage != "" {
			h = map[string]string{"Accept-Language": acceptLanguage}
		}
		return e.send(t, http.MethodGet, path, "", "", h)
	}
	speaks := func(r response, lang, phrase, what string) {
		t.Helper()
		if !strings.Contains(r.body, `<html lang="`+lang+`">`) || !strings.Contains(r.body, phrase) {
			t.Errorf("%s: want lang %s and %q:\n%s", what, lang, phrase, r.body)
		}
	}
	speaks(get("/l/"+l.Token, "es-ES,es;q=0.9,en;q=0.5"), "es", "Abrir el chat", "the landing page for a Spanish browser")
	speaks(get("/l/"+l.Token, "en-GB"), "en", "Open the chat", "the landing page for an English browser")
	speaks(get("/l/"+l.Token, "fr-FR"), "en", "Open the chat", "the landing page for a French browser, an English corporate")
	speaks(get("/app", "es"), "es", "Iniciar sesión", "the sign-in form for a Spanish browser")
	speaks(get("/nothing", "es"), "es", "Página no encontrada", "the 404 page for a Spanish browser")

	es := "es"
	if _, err := e.store.UpdateCorporate(context.Background(), e.corp.ID, imbee.CorporateSettings{Language: &es}); err != nil {
		t.Fatal(err)
	}
	speaks(get("/l/"+l.Token, "fr-FR"), "es", "Abrir el chat", "the landing page for a French browser, a Spanish corporate")
	speaks(get("/l/"+l.Token, ""), "es", "Abrir el chat", "the landing page without Accept-Language, a Spanish corporate")
	speaks(get("/l/"+l.Token, "en"), "en", "Open the chat", "the landing page for an English browser, a Spanish corporate")
}
