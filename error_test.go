package imbee_test

import (
	"testing"

	"github.com/imbee/imbee"
)

// TestErrorNamed: an entry point names an error's subjects its own way,
// in its field and wherever its message names them; subjects it does not
// name keep their domain names for a later call, and text that only
// looks like a subject is left alone.
func TestErrorNamed(t *testing.T) {
	e := imbee.ParamError(imbee.SubjectMail, "{%s} or {%s} is required", imbee.SubjectMail, imbee.SubjectPhone)
	if e.Message != "mail or phone is required" || e.Field != imbee.SubjectMail {
		t.Fatalf("domain words: %q (field %q)", e.Message, e.Field)
	}
	alias := e.Named(func(s string) string {
		if s == imbee.SubjectPhone {
			return "cellular"
		}
		return ""
	})
	if alias.Message != "mail or cellular is required" || alias.Field != imbee.SubjectMail {
		t.Errorf("one subject named: %q (field %q)", alias.Message, alias.Field)
	}
	wire := alias.Named(func(s string) string {
		return map[string]string{imbee.SubjectMail: "mail", imbee.SubjectPhone: "celullar"}[s]
	})
	if wire.Message != "mail or cellular is required" || wire.Field != "mail" {
		t.Errorf("then the rest: %q (field %q)", wire.Message, wire.Field)
	}
	if e.Message != "mail or phone is required" || e.Field != imbee.SubjectMail {
		t.Errorf("Named changed the original: %q", e.Message)
	}

	plain := imbee.ParamError(imbee.SubjectTimeZone, "unknown time zone %q", "{x}")
	if n := plain.Named(func(string) string { return "tz" }); n.Message != `unknown time zone "{x}"` || n.Field != "tz" {
		t.Errorf("a message without subjects: %q (field %q)", n.Message, n.Field)
	}
	nf := imbee.NotFound(imbee.SubjectBot, "{%s} does not name a bot of this corporate", imbee.SubjectBot)
	if nf.Code != imbee.CodeNotFound || nf.Message != "bot does not name a bot of this corporate" {
		t.Errorf("not found: %+v", nf)
	}
	if n := nf.Named(func(string) string { return "bot_idsha" }); n.Message != "bot_idsha does not name a bot of this corporate" || n.Error() != "code 7: bot_idsha does not name a bot of this corporate (field bot_idsha)" {
		t.Errorf("named: %q", n.Error())
	}
}
