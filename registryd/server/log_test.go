package server

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/berth-dev/berth/internal/testutil"
)

func TestLoggerFormatters(t *testing.T) {
	tests := map[string]struct {
		yml   string
		check func(t *testing.T, line string)
	}{
		"logstash": {
			yml: "log:\n  formatter: logstash\n  level: debug\n  fields:\n    service: registry\n",
			check: func(t *testing.T, line string) {
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatalf("not JSON: %q", line)
				}
				ts, _ := m["@timestamp"].(string)
				if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || !strings.HasSuffix(ts, "Z") {
					t.Errorf("@timestamp = %q, want RFC 3339 UTC", ts)
				}
				want := map[string]any{"@version": "1", "level": "debug", "message": "hello", "service": "registry", "k": "v"}
				for k, v := range want {
					if m[k] != v {
						t.Errorf("%s = %v, want %v (line %s)", k, m[k], v, line)
					}
				}
				for _, k := range []string{"time", "msg"} {
					if _, ok := m[k]; ok {
						t.Errorf("logstash line has %q: %s", k, line)
					}
				}
			},
		},
		"json": {
			yml: "log:\n  formatter: json\n  level: debug\n",
			check: func(t *testing.T, line string) {
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil || m["msg"] != "hello" || m["level"] != "DEBUG" {
					t.Errorf("json line %q", line)
				}
			},
		},
		"text with deprecated loglevel": {
			yml: "loglevel: debug\n",
			check: func(t *testing.T, line string) {
				if !strings.Contains(line, "level=DEBUG") || !strings.Contains(line, "msg=hello") || !strings.Contains(line, "k=v") {
					t.Errorf("text line %q", line)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := parseConfig(t, "version: 0.1\nstorage:\n  inmemory:\n"+tc.yml)
			var buf bytes.Buffer
			log, err := NewLogger(cfg, &buf)
			if err != nil {
				t.Fatal(err)
			}
			log.Debug("hello", "k", "v")
			tc.check(t, strings.TrimSpace(buf.String()))
		})
	}
}

func TestLoggerLevelFilters(t *testing.T) {
	cfg := parseConfig(t, "version: 0.1\nstorage:\n  inmemory:\nlog:\n  level: warn\n")
	var buf bytes.Buffer
	log, err := NewLogger(cfg, &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown")
	if out := buf.String(); strings.Contains(out, "hidden") || !strings.Contains(out, "shown") {
		t.Errorf("level warn logged %q", out)
	}
}

// combinedLine is a Combined Log Format line.
var combinedLine = regexp.MustCompile(`^192\.0\.2\.7 - alice \[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "GET /v2/ HTTP/1\.1" 200 2 "http://ref" "berth-test"\n$`)

// htpasswdConfig is an inmemory configuration with htpasswd auth for
// users, each with password "pw".
func htpasswdConfig(t *testing.T, extra string, users ...string) string {
	t.Helper()
	var file strings.Builder
	for _, u := range users {
		hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		file.WriteString(u + ":" + string(hash) + "\n")
	}
	path := filepath.Join(t.TempDir(), "htpasswd")
	writeFile(t, path, file.String())
	return "version: 0.1\nstorage:\n  inmemory:\nauth:\n  htpasswd:\n    realm: r\n    path: " + path + "\n" + extra
}

func TestAccessLog(t *testing.T) {
	for name, tc := range map[string]struct {
		disabled bool
	}{"on by default": {}, "disabled": {disabled: true}} {
		t.Run(name, func(t *testing.T) {
			yml := htpasswdConfig(t, "", "alice")
			if tc.disabled {
				yml += "log:\n  accesslog:\n    disabled: true\n"
			}
			var access bytes.Buffer
			srv, err := New(parseConfig(t, yml), Options{Logger: slog.New(slog.DiscardHandler), AccessLog: &access})
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, "/v2/", nil)
			req.RemoteAddr = "192.0.2.7:41234"
			req.SetBasicAuth("alice", "pw")
			req.Header.Set("Referer", "http://ref")
			req.Header.Set("User-Agent", "berth-test")
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("GET /v2/ = %d", rec.Code)
			}
			line := access.String()
			switch {
			case tc.disabled && line != "":
				t.Errorf("access log written while disabled: %q", line)
			case !tc.disabled && !combinedLine.MatchString(line):
				t.Errorf("access log line %q is not the expected Combined Log Format line", line)
			}
		})
	}
}

func TestLogsEscapeUntrustedValues(t *testing.T) {
	// A user name from the htpasswd file with a space, a quote and a byte
	// that is not UTF-8 (the file is the operator's, the bytes still get
	// escaped), and forged lines hidden in a claimed user name, the request
	// line, the referer and the user agent.
	const oddUser = "eve \"q\xff"
	forged := "\n203.0.113.9 - admin [01/Jan/2025:00:00:00 +0000] \"GET /v2/secret HTTP/1.1\" 200 2 \"-\" \"x\""
	var access, logs testutil.LockedBuffer
	srv, err := New(parseConfig(t, htpasswdConfig(t, "log:\n  level: info\n", "alice", oddUser)), Options{
		Logger:    slog.New(slog.NewTextHandler(&logs, nil)),
		AccessLog: &access,
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		user, password string
		requestURI     string
		referer, agent string
		wantStatus     int
		wantLine       string // regexp the access line must match
	}{
		"failed login with a forged line in the user name": {
			user: "alice" + forged, password: "wrong", wantStatus: http.StatusUnauthorized,
			wantLine: `^192\.0\.2\.7 - - \[[^]]+\] "GET /v2/ HTTP/1\.1" 401 `,
		},
		"authenticated odd user": {
			user: oddUser, password: "pw", wantStatus: http.StatusOK,
			wantLine: `^192\.0\.2\.7 - eve\\x20\\x22q\\xff \[`,
		},
		"forged request line, referer and agent, bytes that are not UTF-8": {
			user: "alice", password: "pw", requestURI: "/v2/\xfe" + forged, referer: "r\xff" + forged, agent: "a\x00" + forged,
			wantStatus: http.StatusNotFound,
			wantLine: `^192\.0\.2\.7 - alice \[[^]]+\] "GET /v2/\\xfe\\n203\.0\.113\.9 .*HTTP/1\.1" 404 \d+ ` +
				`"r\\xff\\n203\.0\.113\.9 [^\n]*" "a\\x00\\n203\.0\.113\.9 [^\n]*"$`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			before := len(access.String())
			req := httptest.NewRequest(http.MethodGet, "/v2/", nil)
			if tc.requestURI != "" {
				req.RequestURI = tc.requestURI
				req.URL.Path = tc.requestURI
			}
			req.RemoteAddr = "192.0.2.7:41234"
			req.SetBasicAuth(tc.user, tc.password)
			req.Header.Set("Referer", tc.referer)
			req.Header.Set("User-Agent", tc.agent)
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tc.wantStatus)
			}
			got := access.String()[before:]
			if strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, "\n") {
				t.Fatalf("one request wrote %d lines:\n%s", strings.Count(got, "\n"), got)
			}
			if !regexp.MustCompile(tc.wantLine).MatchString(strings.TrimSuffix(got, "\n")) {
				t.Errorf("access line\n%s\ndoes not match %s", got, tc.wantLine)
			}
		})
	}

	// The failed login is in the daemon's log once, under claimedUser,
	// escaped: every line of that log is one record.
	out := logs.String()
	if n := strings.Count(out, `msg="Login failed" claimedUser="alice\n203.0.113.9 - admin`); n != 1 {
		t.Errorf("%d escaped failed-login lines, want 1:\n%s", n, out)
	}
	for line := range strings.Lines(out) {
		if !strings.HasPrefix(line, "time=") {
			t.Errorf("log line not starting a record (forged?): %q", line)
		}
	}
}
