package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/smtp"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/registryd/configuration"
)

// Log hooks (log.hooks; the reference defines one type, mail). A mail hook
// sends one message per log record whose level is one of its levels, as
// Distribution's does: subject "[<level>] <smtp host>: <message>", a
// plain-text body with the message and every attribute as "key: value",
// From and To from the hook. Records below the logger's level are not
// logged, so they are not mailed either.
//
// Levels are registryd's four (debug, info, warn, error) and two more that
// registryd logs only in these cases: fatal when `registryd serve` stops on
// an error, panic when a request handler panics (the request is aborted,
// as net/http does).
//
// Mail is sent in the background, one message at a time per hook, from a
// queue of at most hookQueue records (further records are dropped and
// counted in the next delivery failure line); a hook's failures are logged
// at warn level without passing through the hooks. Pending mail is
// delivered at shutdown within HookDrain.
//
// SMTP: the connection to smtp.addr (host:port) upgrades with STARTTLS
// when the server offers it, verifying the server's certificate for the
// host; with username set, PLAIN authentication follows, which needs TLS.
// smtp.insecure: true skips the certificate verification and allows
// authenticating and sending without TLS. (Distribution reads insecure and
// never uses it; net/smtp's own rules apply there.)

// Levels beyond slog's four.
const (
	LevelFatal = slog.Level(12)
	LevelPanic = slog.Level(16)
)

const (
	hookQueue   = 100
	smtpTimeout = 30 * time.Second
	// HookDrain is how long queued hook mail is given at shutdown.
	HookDrain = 10 * time.Second
)

var hookLevels = map[string]slog.Level{
	"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn,
	"error": slog.LevelError, "fatal": LevelFatal, "panic": LevelPanic,
}

// levelName is a level's name in log lines and mail subjects.
func levelName(l slog.Level) string {
	switch l {
	case LevelFatal:
		return "fatal"
	case LevelPanic:
		return "panic"
	}
	return strings.ToLower(l.String())
}

// hookRecord is what a hook sends: the record and the attributes the
// logger carried.
type hookRecord struct {
	level slog.Level
	msg   string
	attrs []slog.Attr
}

// mailHook delivers the records of its levels by mail.
type mailHook struct {
	levels   map[slog.Level]bool
	smtp     configuration.SMTP
	from     string
	to       []string
	queue    chan hookRecord
	done     chan struct{}
	warn     func(msg string, args ...any) // logs without hooks
	hostname string

	mu      sync.Mutex // guards dropped, closed and sending on queue
	dropped int
	closed  bool
}

func newMailHook(h configuration.LogHook, warn func(string, ...any)) (*mailHook, error) {
	m := &mailHook{levels: map[slog.Level]bool{}, smtp: h.Options.SMTP, from: h.Options.From, to: h.Options.To,
		queue: make(chan hookRecord, hookQueue), done: make(chan struct{}), warn: warn}
	for _, l := range h.Levels {
		m.levels[hookLevels[strings.ToLower(l)]] = true
	}
	host, _, err := net.SplitHostPort(m.smtp.Addr)
	if err != nil || host == "" {
		return nil, fmt.Errorf("smtp.addr: %q is not host:port", m.smtp.Addr)
	}
	m.hostname = host
	if m.from == "" || len(m.to) == 0 {
		return nil, errors.New("a mail hook needs options.from and options.to")
	}
	go m.run()
	return m, nil
}

func (m *mailHook) offer(r hookRecord) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	select {
	case m.queue <- r:
	default:
		m.dropped++
	}
}

func (m *mailHook) run() {
	defer close(m.done)
	for r := range m.queue {
		if err := m.send(r); err != nil {
			m.mu.Lock()
			dropped := m.dropped
			m.dropped = 0
			m.mu.Unlock()
			m.warn("Log hook: mail not sent", "smtp", m.smtp.Addr, "error", err, "dropped", dropped)
		}
	}
}

// close stops taking records and delivers what is queued until ctx ends.
// Closing twice is harmless.
func (m *mailHook) close(ctx context.Context) error {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		close(m.queue)
	}
	m.mu.Unlock()
	select {
	case <-m.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("log hook mail to %s: %d messages not delivered: %w", m.smtp.Addr, len(m.queue), ctx.Err())
	}
}

func (m *mailHook) message(r hookRecord) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "To: %s\r\nFrom: %s\r\nSubject: [%s] %s: %s\r\nDate: %s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
		strings.Join(m.to, ", "), m.from, levelName(r.level), m.hostname, oneLine(r.msg), time.Now().Format(time.RFC1123Z))
	b.WriteString(r.msg + "\r\n\r\n")
	for _, a := range r.attrs {
		fmt.Fprintf(&b, "%s: %s\r\n", a.Key, a.Value.String())
	}
	return []byte(b.String())
}

func oneLine(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }

// send delivers one record.
func (m *mailHook) send(r hookRecord) error {
	conn, err := net.DialTimeout("tcp", m.smtp.Addr, smtpTimeout)
	if err != nil {
		return err
	}
	_ = conn.SetDeadline(time.Now().Add(smtpTimeout))
	c, err := smtp.NewClient(conn, m.hostname)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if err := c.Hello(localName()); err != nil {
		return err
	}
	secure := false
	if ok, _ := c.Extension("STARTTLS"); ok {
		//nolint:gosec // G402: log.hooks[].options.smtp.insecure asks for it, as in Distribution
		if err := c.StartTLS(&tls.Config{ServerName: m.hostname, InsecureSkipVerify: m.smtp.Insecure, MinVersion: tls.VersionTLS12}); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
		secure = true
	}
	if !secure && !m.smtp.Insecure {
		if m.smtp.Username != "" {
			return errors.New("the server offers no STARTTLS: refusing to send credentials in clear (set smtp.insecure to allow it)")
		}
	}
	if m.smtp.Username != "" {
		if err := c.Auth(plainAuth{user: m.smtp.Username, password: m.smtp.Password}); err != nil {
			return fmt.Errorf("AUTH: %w", err)
		}
	}
	if err := c.Mail(m.from); err != nil {
		return err
	}
	for _, to := range m.to {
		if err := c.Rcpt(to); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(m.message(r)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func localName() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}

// plainAuth is SASL PLAIN without net/smtp's own TLS check: send decides
// when clear text is allowed (smtp.insecure).
type plainAuth struct{ user, password string }

func (a plainAuth) Start(*smtp.ServerInfo) (string, []byte, error) {
	return "PLAIN", []byte("\x00" + a.user + "\x00" + a.password), nil
}

func (a plainAuth) Next(_ []byte, more bool) ([]byte, error) {
	if more {
		return nil, errors.New("unexpected server challenge")
	}
	return nil, nil
}

// hookHandler passes every record to next and offers those of a hook's
// levels to the hook, with the logger's attributes.
type hookHandler struct {
	next  slog.Handler
	hooks []*mailHook
	attrs []slog.Attr
	group string
}

func (h *hookHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *hookHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.next.Handle(ctx, r)
	for _, m := range h.hooks {
		if !m.levels[r.Level] {
			continue
		}
		attrs := slices.Clone(h.attrs)
		r.Attrs(func(a slog.Attr) bool {
			if h.group != "" {
				a.Key = h.group + "." + a.Key
			}
			attrs = append(attrs, a)
			return true
		})
		m.offer(hookRecord{level: r.Level, msg: r.Message, attrs: attrs})
	}
	return err
}

func (h *hookHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(attrs)
	c.attrs = slices.Clone(h.attrs)
	for _, a := range attrs {
		if h.group != "" {
			a.Key = h.group + "." + a.Key
		}
		c.attrs = append(c.attrs, a)
	}
	return &c
}

func (h *hookHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	if h.group != "" {
		name = h.group + "." + name
	}
	c.group = name
	return &c
}

// withLogHooks wraps h with the enabled hooks of the log section; the
// returned close delivers what they have queued.
func withLogHooks(hooks []configuration.LogHook, h slog.Handler) (slog.Handler, func(context.Context) error, error) {
	var mail []*mailHook
	warn := slog.New(h).Warn
	for i, c := range hooks {
		if c.Disabled {
			continue
		}
		m, err := newMailHook(c, warn)
		if err != nil {
			for _, started := range mail {
				_ = started.close(context.Background())
			}
			return nil, nil, fmt.Errorf("log.hooks[%d].options: %w", i, err)
		}
		mail = append(mail, m)
	}
	if len(mail) == 0 {
		return h, func(context.Context) error { return nil }, nil
	}
	closeAll := func(ctx context.Context) error {
		var errs []error
		for _, m := range mail {
			errs = append(errs, m.close(ctx))
		}
		return errors.Join(errs...)
	}
	return &hookHandler{next: h, hooks: mail}, closeAll, nil
}
