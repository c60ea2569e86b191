// Package redact removes credentials from values llem prints or records:
// addresses such as DOCKER_HOST or HF_ENDPOINT may carry a user:password or
// a token, and nothing llem shows should leak them.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces a secret.
const Mask = "redacted"

// secretParams are query parameters treated as credentials.
var secretParams = []string{"token", "access_token", "api_key", "apikey", "key", "password", "secret", "sig", "signature"}

// URL returns s with any password in its user info and any credential-like
// query parameter replaced by Mask. A value that does not parse as a URL
// with a scheme is returned with a user:password@ prefix masked, if it has
// one.
func URL(s string) string {
	if s == "" {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return maskUserinfo(s)
	}
	changed := false
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), Mask)
			changed = true
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			for _, p := range secretParams {
				if strings.EqualFold(k, p) {
					q.Set(k, Mask)
					changed = true
				}
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	if !changed {
		return s
	}
	return u.String()
}

// maskUserinfo masks the password of a "user:password@host" form.
func maskUserinfo(s string) string {
	at := strings.LastIndex(s, "@")
	if at < 0 {
		return s
	}
	start := strings.LastIndex(s[:at], "/") + 1
	if colon := strings.Index(s[start:at], ":"); colon >= 0 {
		return s[:start+colon+1] + Mask + s[at:]
	}
	return s
}

// userinfoInText finds scheme://user:password@ inside free text, such as a
// client library's error message that quotes the address it dialled.
var userinfoInText = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@`)

// Text masks the password of every scheme://user:password@ address in s.
func Text(s string) string {
	return userinfoInText.ReplaceAllString(s, "${1}"+Mask+"@")
}
