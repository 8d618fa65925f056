package server

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/registryd/configuration"
)

func hookLogger(t *testing.T, hook string) (*slog.Logger, func(context.Context) error, *testutil.LockedBuffer) {
	t.Helper()
	yml := "version: 0.1\nstorage: {inmemory: {}}\nlog:\n  level: debug\n  fields: {service: registry}\n  hooks:\n" + indent(hook, 4)
	cfg, err := configuration.ParseWithEnv(strings.NewReader(yml), nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, yml)
	}
	logs := &testutil.LockedBuffer{}
	l, closeHooks, err := NewLogging(cfg, logs, new(slog.LevelVar))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeHooks(context.Background()) })
	return l, closeHooks, logs
}

// TestMailHook sends log records by mail to a real SMTP server on loopback,
// as log.hooks configures: only the hook's levels, with the record's
// message and attributes, to every recipient; a disabled hook sends nothing.
func TestMailHook(t *testing.T) {
	box, off := testutil.Mailbox(t, nil, "", ""), testutil.Mailbox(t, nil, "", "")
	log, closeHooks, _ := hookLogger(t, `- type: mail
  levels: [error]
  options:
    smtp: {addr: "`+box.Addr+`"}
    from: registry@example.com
    to: [ops@example.com, oncall@example.com]
- type: mail
  disabled: true
  levels: [error]
  options:
    smtp: {addr: "`+off.Addr+`"}
    from: registry@example.com
    to: [nobody@example.com]
`)
	log.Info("Listening", "addr", ":5000")
	log.With("component", "gc").Error("Disk full", "path", "/var/lib/registry")
	m := box.Wait(t, 1)
	if m.From != "registry@example.com" || strings.Join(m.To, ",") != "ops@example.com,oncall@example.com" {
		t.Errorf("envelope from %q to %q", m.From, m.To)
	}
	for _, want := range []string{"Subject: [error] 127.0.0.1: Disk full", "From: registry@example.com", "Disk full", "service: registry", "component: gc", "path: /var/lib/registry"} {
		if !strings.Contains(m.Data, want) {
			t.Errorf("message lacks %q:\n%s", want, m.Data)
		}
	}
	if err := closeHooks(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(box.Received()); n != 1 {
		t.Errorf("%d messages, want 1 (the info record is not a hook level)", n)
	}
	if n := len(off.Received()); n != 0 {
		t.Errorf("the disabled hook sent %d messages", n)
	}
}

// TestMailHookTLSAndAuth: STARTTLS is used when offered, the certificate is
// verified unless smtp.insecure, and credentials go only over TLS unless
// smtp.insecure.
func TestMailHookTLSAndAuth(t *testing.T) {
	ca := testutil.NewCA(t, "mail CA")
	cert := ca.Certificate(t, "mail")
	tests := map[string]struct {
		tls      bool
		insecure bool
		wantSent bool
		wantLog  string
	}{
		"STARTTLS, certificate not trusted":         {tls: true, wantLog: "certificate"},
		"STARTTLS, insecure skips verification":     {tls: true, insecure: true, wantSent: true},
		"no TLS: credentials not sent in clear":     {wantLog: "refusing to send credentials in clear"},
		"no TLS, insecure: credentials sent anyway": {insecure: true, wantSent: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var c *tls.Certificate
			if tc.tls {
				c = &cert
			}
			box := testutil.Mailbox(t, c, "mailer", "pw")
			log, closeHooks, logs := hookLogger(t, `- type: mail
  levels: [warn, error]
  options:
    smtp: {addr: "`+box.Addr+`", username: mailer, password: pw, insecure: `+map[bool]string{true: "true", false: "false"}[tc.insecure]+`}
    from: registry@example.com
    to: [ops@example.com]
`)
			log.Error("Something broke")
			if err := closeHooks(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := box.Received()
			if tc.wantSent {
				if len(got) != 1 || got[0].User != "mailer" || got[0].TLS != tc.tls {
					t.Fatalf("received %+v", got)
				}
				return
			}
			if len(got) != 0 {
				t.Fatalf("mail was sent: %+v", got)
			}
			if !strings.Contains(logs.String(), "Log hook: mail not sent") || !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("the failure is not logged with %q:\n%s", tc.wantLog, logs.String())
			}
		})
	}
}

// TestMailHookPanicLevel: a panicking request handler is logged at the
// panic level and mailed; the request is aborted.
func TestMailHookPanicLevel(t *testing.T) {
	box := testutil.Mailbox(t, nil, "", "")
	log, closeHooks, logs := hookLogger(t, `- type: mail
  levels: [panic]
  options:
    smtp: {addr: "`+box.Addr+`"}
    from: registry@example.com
    to: [ops@example.com]
`)
	srv := httptest.NewServer(recoverPanics(log, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })))
	defer srv.Close()
	if _, err := http.Get(srv.URL + "/v2/"); err == nil {
		t.Error("the request of a panicking handler was not aborted")
	}
	log.Error("not a panic")
	if err := closeHooks(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := box.Received()
	if len(got) != 1 || !strings.Contains(got[0].Data, "Subject: [panic] 127.0.0.1: Request handler panicked") || !strings.Contains(got[0].Data, "panic: boom") {
		t.Fatalf("received %+v", got)
	}
	if !strings.Contains(logs.String(), "level=PANIC") {
		t.Errorf("log line without the level name:\n%s", logs.String())
	}
}

// TestMailHookErrors: a hook without from, to or a host:port address is a
// start-up error naming it.
func TestMailHookErrors(t *testing.T) {
	for name, hook := range map[string]string{
		"no address":    "- type: mail\n  levels: [error]\n  options: {from: a@example.com, to: [b@example.com]}\n",
		"no recipients": "- type: mail\n  levels: [error]\n  options: {smtp: {addr: 'localhost:25'}, from: a@example.com}\n",
	} {
		t.Run(name, func(t *testing.T) {
			cfg, err := configuration.ParseWithEnv(strings.NewReader("version: 0.1\nstorage: {inmemory: {}}\nlog:\n  hooks:\n"+indent(hook, 4)), nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := NewLogging(cfg, io.Discard, new(slog.LevelVar)); err == nil || !strings.Contains(err.Error(), "log.hooks[0].options") {
				t.Errorf("err = %v", err)
			}
		})
	}
}
