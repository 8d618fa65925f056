package server

import (
	"io"
	"log/slog"
	"strings"
	"time"
)

// newLogstashHandler writes one JSON object per line in the Logstash event
// shape (log.formatter: logstash):
//
//	{"@timestamp":"2025-01-02T03:04:05.123456789Z","level":"info","message":"Listening","@version":"1","addr":":5000",...}
//
// @timestamp is RFC 3339 with nanoseconds, in UTC; @version is always "1";
// level is the lower-case level name (debug, info, warn, error); message
// is the log message; every attribute (log.fields included) is a
// top-level key, groups nest as objects. This is the shape of the Logstash
// formatter Distribution 2.x used. Distribution 3 prints its plain JSON
// (time, level, msg) under this name; registryd keeps the Logstash names,
// which is what a user choosing this formatter feeds to Logstash.
func newLogstashHandler(w io.Writer, opts *slog.HandlerOptions) slog.Handler {
	o := *opts
	o.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) > 0 {
			return a
		}
		switch a.Key {
		case slog.TimeKey:
			return slog.String("@timestamp", a.Value.Time().UTC().Format(time.RFC3339Nano))
		case slog.LevelKey:
			if l, ok := a.Value.Any().(slog.Level); ok {
				return slog.String("level", levelName(l))
			}
			return slog.String("level", strings.ToLower(a.Value.String()))
		case slog.MessageKey:
			return slog.String("message", a.Value.String())
		}
		return a
	}
	return slog.NewJSONHandler(w, &o).WithAttrs([]slog.Attr{slog.String("@version", "1")})
}
