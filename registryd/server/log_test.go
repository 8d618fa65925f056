package server

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
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

func TestAccessLog(t *testing.T) {
	for name, tc := range map[string]struct {
		disabled bool
	}{"on by default": {}, "disabled": {disabled: true}} {
		t.Run(name, func(t *testing.T) {
			yml := "version: 0.1\nstorage:\n  inmemory:\n"
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
