package delivery

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path"
	"strings"
	texttemplate "text/template"

	"github.com/imbee/imbee"
)

//go:embed templates
var builtin embed.FS

// The files of one language's templates: subject.txt, mail.txt and sms.txt
// are text/template, mail.html is html/template (values are escaped).
const (
	subjectFile = "subject.txt"
	mailText    = "mail.txt"
	mailHTML    = "mail.html"
	smsText     = "sms.txt"
)

// Templates render the mail and SMS that carry a link, per language.
type Templates struct {
	text map[string]*texttemplate.Template // language → subject, mail text, sms
	html map[string]*htmltemplate.Template // language → mail html
}

// Rendered is one message in every form a channel needs.
type Rendered struct {
	Subject string
	Text    string
	HTML    string
	SMS     string
}

// TemplateData is what the templates can use.
type TemplateData struct {
	URL           string
	BotName       string
	CorporateName string
	SenderName    string // the corporate's sender name, or its name
}

// LoadTemplates returns the built-in templates with any file found in dir
// (as dir/{language}/{file}, e.g. dir/es/subject.txt) used instead of the
// built-in one. dir "" means the built-in templates only.
func LoadTemplates(dir string) (*Templates, error) {
	t := &Templates{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	for _, lang := range imbee.Languages {
		read := func(name string) (string, error) {
			if dir != "" {
				b, err := os.ReadFile(path.Join(dir, lang, name))
				if err == nil {
					return string(b), nil
				}
				if !errors.Is(err, fs.ErrNotExist) {
					return "", err
				}
			}
			b, err := builtin.ReadFile(path.Join("templates", lang, name))
			return string(b), err
		}
		tt := texttemplate.New(lang).Option("missingkey=error")
		for _, name := range []string{subjectFile, mailText, smsText} {
			src, err := read(name)
			if err != nil {
				return nil, err
			}
			if _, err := tt.New(name).Parse(src); err != nil {
				return nil, fmt.Errorf("template %s/%s: %w", lang, name, err)
			}
		}
		src, err := read(mailHTML)
		if err != nil {
			return nil, err
		}
		ht, err := htmltemplate.New(mailHTML).Option("missingkey=error").Parse(src)
		if err != nil {
			return nil, fmt.Errorf("template %s/%s: %w", lang, mailHTML, err)
		}
		t.text[lang], t.html[lang] = tt, ht
	}
	// Render once now, so that a broken override fails at start rather
	// than on every delivery.
	for _, lang := range imbee.Languages {
		if _, err := t.Render(lang, TemplateData{URL: "https://example.com/l/x", BotName: "b", CorporateName: "c", SenderName: "s"}); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Render renders the message in lang (the first language when lang has no
// templates).
func (t *Templates) Render(lang string, d TemplateData) (Rendered, error) {
	if _, ok := t.text[lang]; !ok {
		lang = imbee.Languages[0]
	}
	if d.SenderName == "" {
		d.SenderName = d.CorporateName
	}
	var r Rendered
	var b bytes.Buffer
	for _, f := range []struct {
		name string
		out  *string
	}{{subjectFile, &r.Subject}, {mailText, &r.Text}, {smsText, &r.SMS}} {
		b.Reset()
		if err := t.text[lang].ExecuteTemplate(&b, f.name, d); err != nil {
			return r, fmt.Errorf("template %s/%s: %w", lang, f.name, err)
		}
		*f.out = b.String()
	}
	b.Reset()
	if err := t.html[lang].Execute(&b, d); err != nil {
		return r, fmt.Errorf("template %s/%s: %w", lang, mailHTML, err)
	}
	r.HTML = b.String()
	// A subject is one line; an SMS has no trailing newline.
	r.Subject = strings.Join(strings.Fields(r.Subject), " ")
	r.SMS = strings.TrimSpace(r.SMS)
	return r, nil
}
