package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/registryd/auth"
	"github.com/berth-dev/berth/registryd/configuration"
	"github.com/berth-dev/berth/registryd/internal/httpx"
)

// NewLogger builds the daemon's structured logger from the log section:
// level (or the deprecated top-level loglevel), formatter text, json or
// logstash (see newLogstashHandler), and fields added to every line.
func NewLogger(cfg *configuration.Configuration, w io.Writer) (*slog.Logger, error) {
	return NewLoggerLevel(cfg, w, new(slog.LevelVar))
}

// NewLoggerLevel is NewLogger with the level held in lv, which it sets
// from the configuration; pass the same lv as Options.LogLevel so that a
// configuration reload can change the level of the running logger. Log
// hooks send in the background; NewLogging also returns what delivers
// their queue at exit.
func NewLoggerLevel(cfg *configuration.Configuration, w io.Writer, lv *slog.LevelVar) (*slog.Logger, error) {
	l, _, err := NewLogging(cfg, w, lv)
	return l, err
}

// NewLogging is NewLoggerLevel with the log hooks' close, which delivers
// the mail they have queued until its context ends (see loghook.go).
func NewLogging(cfg *configuration.Configuration, w io.Writer, lv *slog.LevelVar) (*slog.Logger, func(context.Context) error, error) {
	level, err := LogLevel(cfg)
	if err != nil {
		return nil, nil, err
	}
	lv.Set(level)
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.LevelKey {
			if l, ok := a.Value.Any().(slog.Level); ok && (l == LevelFatal || l == LevelPanic) {
				return slog.String(slog.LevelKey, strings.ToUpper(levelName(l)))
			}
		}
		return a
	}}
	var h slog.Handler
	switch cfg.Log.Formatter {
	case "", "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	case "logstash":
		h = newLogstashHandler(w, opts)
	default:
		return nil, nil, fmt.Errorf("log.formatter: %q not supported yet", cfg.Log.Formatter)
	}
	h, closeHooks, err := withLogHooks(cfg.Log.Hooks, h)
	if err != nil {
		return nil, nil, err
	}
	logger := slog.New(h)
	for _, k := range slices.Sorted(maps.Keys(cfg.Log.Fields)) {
		logger = logger.With(k, cfg.Log.Fields[k])
	}
	return logger, closeHooks, nil
}

// recoverPanics logs a request handler's panic at the panic level (which a
// log hook may mail) with its stack, then aborts the request as net/http
// would have.
func recoverPanics(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if err, ok := v.(error); !ok || !errors.Is(err, http.ErrAbortHandler) {
					log.Log(r.Context(), LevelPanic, "Request handler panicked", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				}
				panic(http.ErrAbortHandler)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// LogLevel is the level log.level (or the deprecated top-level loglevel)
// selects; info when neither is set.
func LogLevel(cfg *configuration.Configuration) (slog.Level, error) {
	level := cfg.Log.Level
	if level == "" {
		level = cfg.Loglevel //nolint:staticcheck // SA1019: the deprecated key is still read, as Distribution reads it
	}
	switch strings.ToLower(string(level)) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log.level: %q is not one of error, warn, info, debug", level)
}

// accessLog writes one Combined Log Format line per request to w, as
// Distribution's access log does (log.accesslog; on unless disabled).
//
// Every value a client controls is escaped, so one request is always one
// line: the request line, referer and user agent are quoted with Go
// escapes (control characters, quotes and bytes that are not UTF-8
// become \n, \", \xff...), and the user column, unquoted in this format,
// escapes every byte outside printable ASCII, space, quote and backslash
// as \xHH. The user column names the user auth authenticated
// (auth.TrackIdentity), never the one a request merely claims: a failed
// login shows "-".
func accessLog(w io.Writer, next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rec := httpx.NewRecorder(rw)
		start := time.Now()
		ctx, identity := auth.TrackIdentity(r.Context())
		next.ServeHTTP(rec, r.WithContext(ctx))
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		fmt.Fprintf(w, "%s - %s [%s] %s %d %d %s %s\n",
			host, logField(identity()), start.Format("02/Jan/2006:15:04:05 -0700"),
			strconv.Quote(r.Method+" "+r.RequestURI+" "+r.Proto),
			rec.Status, rec.Written,
			strconv.Quote(r.Referer()), strconv.Quote(r.UserAgent()))
	})
}

// logField renders an unquoted access log field: "-" when empty, every
// byte outside printable ASCII, and space, '"' and '\\', as \xHH.
func logField(s string) string {
	if s == "" {
		return "-"
	}
	var b strings.Builder
	for i := range len(s) {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			fmt.Fprintf(&b, "\\x%02x", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
