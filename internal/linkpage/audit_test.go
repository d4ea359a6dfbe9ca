package linkpage

import "testing"

func TestAgentClass(t *testing.T) {
	for ua, want := range map[string]string{
		"": "unknown",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36":       "browser",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Mobile Safari/537.36": "mobile",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148":                         "mobile",
		"Mozilla/4.0 (compatible; ms-office; MSOffice 16)":                                                                  "scanner",
		"Mozilla/5.0 (compatible; Mimecast/1.0)":                                                                            "scanner",
		"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)":                                         "scanner",
		"Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)":                                                        "scanner",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)":                                          "bot",
		"curl/8.5.0":             "bot",
		"python-requests/2.32.3": "bot",
		"Go-http-client/1.1":     "bot",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/130.0 Safari/537.36": "bot",
		"SomethingElse/1.0": "unknown",
	} {
		if got := agentClass(ua); got != want {
			t.Errorf("agentClass(%q) = %q, want %q", ua, got, want)
		}
	}
}
