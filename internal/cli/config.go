package cli

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// A config file holds settings as TOML, one per line, named as the flags
// are: `rate-limit = 100`, `public-url = "https://chat.example.com"`,
// `write-timeout = "45s"`. A flag on the command line wins over
// IMBEE_<NAME>, which wins over the file, which wins over the default.
// One file can serve every command: each takes the settings it has a flag
// for; serve, whose flags are a superset of the others', refuses a name it
// does not know, so a typo does not pass silently.

// strictConfig are the commands that refuse unknown settings.
var strictConfig = []string{"serve"}

// applyConfig fills each flag of fs not already set (set[name]) from the
// config file at path.
func (c *cli) applyConfig(fs *flag.FlagSet, path string, set map[string]bool) error {
	settings, secrets, err := readConfig(path)
	if err != nil {
		return err
	}
	if len(secrets) > 0 {
		if info, err := os.Stat(path); err == nil && info.Mode().Perm()&0o077 != 0 {
			fmt.Fprintf(c.stderr, "warning: %s holds %s and can be read by other users: chmod 600 %s\n",
				path, strings.Join(secrets, ", "), path)
		}
	}
	names := make([]string, 0, len(settings))
	for name := range settings {
		names = append(names, name)
	}
	slices.Sort(names) // the first unknown name reported is stable
	for _, name := range names {
		if fs.Lookup(name) == nil || name == "config" {
			if slices.Contains(strictConfig, fs.Name()) || name == "config" {
				return fmt.Errorf("%s: unknown setting %q (settings are named as the flags of imbee %s --help)", path, name, fs.Name())
			}
			continue
		}
		if set[name] {
			continue
		}
		if err := fs.Set(name, settings[name]); err != nil {
			return fmt.Errorf("%s: %s: %w", path, name, err)
		}
	}
	return nil
}

// readConfig reads a flat TOML file into flag values, and names the
// settings in it that hold secrets.
func readConfig(path string) (map[string]string, []string, error) {
	var raw map[string]any
	if _, err := toml.DecodeFile(path, &raw); err != nil {
		return nil, nil, fmt.Errorf("config file: %w", err)
	}
	out := make(map[string]string, len(raw))
	var secrets []string
	for name, v := range raw {
		switch v := v.(type) {
		case string:
			out[name] = v
		case int64:
			out[name] = strconv.FormatInt(v, 10)
		case float64:
			out[name] = strconv.FormatFloat(v, 'g', -1, 64)
		case bool:
			out[name] = strconv.FormatBool(v)
		default:
			return nil, nil, fmt.Errorf("%s: %s: want a string, number or boolean (settings are flat, named as the flags)", path, name)
		}
		if strings.Contains(name, "password") || strings.Contains(name, "token") || strings.Contains(name, "secret") {
			secrets = append(secrets, name)
		}
	}
	slices.Sort(secrets)
	return out, secrets, nil
}
