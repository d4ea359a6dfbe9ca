package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/chromedp/chromedp"
)

// EnvAxe names axe-core's axe.min.js (.ci/run installs the pinned version
// from npm into .ci/axe and sets it); without it the pages are not checked
// for accessibility, which fails when CI is set.
const EnvAxe = "IMBEE_AXE_JS"

var axeOnce = sync.OnceValues(func() (string, error) {
	path := os.Getenv(EnvAxe)
	if path == "" {
		path = filepath.Join("..", ".ci", "axe", "node_modules", "axe-core", "axe.min.js")
	}
	b, err := os.ReadFile(path)
	return string(b), err
})

// axeViolation is what axe-core reports of one rule a page breaks.
type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// checkAxe runs axe-core on the page the tab shows (WCAG 2.x A and AA,
// and axe's best practices) and fails the test on any violation.
func (b *chromeTab) checkAxe(page string) {
	b.t.Helper()
	src, err := axeOnce()
	if err != nil {
		msg := "axe-core not found (" + err.Error() + "): the pages are NOT checked for accessibility. Install it: (cd .ci/axe && npm ci)"
		if os.Getenv("CI") != "" {
			b.t.Fatal(msg)
		}
		b.t.Log("SKIPPED: " + msg)
		return
	}
	ctx, cancel := b.step()
	defer cancel()
	// Runtime.evaluate is not bound by the page's CSP: the page needs no
	// exception for the test's script.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](src)); err != nil {
		b.fail("inject axe-core into "+page, err)
	}
	vs, err := chromedp.Run(ctx, chromedp.Evaluate[[]axeViolation](`axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations.map(v => ({
		id: v.id, impact: v.impact || "", help: v.help, nodes: v.nodes.map(n => n.target.join(" ")) })))`, chromedp.EvalAwaitPromise))
	if err != nil {
		b.fail("run axe-core on "+page, err)
	}
	for _, v := range vs {
		b.t.Errorf("%s: axe-core: %s (%s): %s, at %s", page, v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "; "))
	}
}
