package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is the release, set when building one:
//
//	go build -ldflags "-X github.com/imbee/imbee/internal/cli.version=v1.2.3" ./cmd/imbee
//
// Unset, it is the module version Go stamped into the binary, or "devel".
var version string

// build describes the running binary.
type build struct {
	Version  string `json:"version"`
	Revision string `json:"revision"` // the VCS commit; "" when Go did not stamp it (go run, go test)
	Time     string `json:"time"`     // the commit's time, RFC 3339
	Modified bool   `json:"modified"` // built from a working tree with uncommitted changes
	Go       string `json:"go"`
	Platform string `json:"platform"` // GOOS/GOARCH
}

func readBuild() build {
	b := build{Version: version, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" && info.Main.Version != "(devel)" {
			b.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.time":
				b.Time = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if b.Version == "" {
		b.Version = "devel"
	}
	return b
}

func (c *cli) version(args []string) error {
	fs := c.flagSet("version", "Print imbee's version, the revision it was built from, and its Go version and platform.")
	asJSON := fs.Bool("json", false, "print one JSON object: version, revision, time, modified, go, platform")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	b := readBuild()
	if *asJSON {
		return c.printJSON(b)
	}
	orUnknown := func(s string) string {
		if s == "" {
			return "unknown"
		}
		return s
	}
	_, err := fmt.Fprintf(c.stdout, "imbee %s\n  revision: %s\n  time:     %s\n  modified: %t\n  go:       %s\n  platform: %s\n",
		b.Version, orUnknown(b.Revision), orUnknown(b.Time), b.Modified, b.Go, b.Platform)
	return err
}
