package testutil

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPServer is a real SMTP server (go-smtp) on loopback that keeps the
// mail it receives, for the tests of log hooks.
type SMTPServer struct {
	Addr string
	mu   sync.Mutex
	mail []Mail
}

// Mail is one message received.
type Mail struct {
	From string
	To   []string
	Data string
	User string // the authenticated user, if any
	TLS  bool   // received over STARTTLS
}

type mailSession struct {
	box            *SMTPServer
	conn           *smtp.Conn
	cur            Mail
	user, password string // accepted credentials; "" requires none
}

func (s *mailSession) Reset()        { s.cur = Mail{User: s.cur.User} }
func (s *mailSession) Logout() error { return nil }
func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.user != "" && s.cur.User == "" {
		return errors.New("authentication required")
	}
	s.cur.From = from
	return nil
}
func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.To = append(s.cur.To, to)
	return nil
}
func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.Data = string(b)
	_, s.cur.TLS = s.conn.TLSConnectionState()
	s.box.mu.Lock()
	s.box.mail = append(s.box.mail, s.cur)
	s.box.mu.Unlock()
	return nil
}
func (s *mailSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *mailSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, password string) error {
		if user != s.user || password != s.password {
			return errors.New("bad credentials")
		}
		s.cur.User = user
		return nil
	}), nil
}

// Mailbox serves SMTP on a free loopback port until the test ends: with
// cert, STARTTLS is offered; with user, AUTH PLAIN with that user and
// password is required before MAIL.
func Mailbox(t testing.TB, cert *tls.Certificate, user, password string) *SMTPServer {
	t.Helper()
	box := &SMTPServer{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &mailSession{box: box, conn: c, user: user, password: password}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ErrorLog = log.New(io.Discard, "", 0)
	if cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	box.Addr = l.Addr().String()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return box
}

// Received is the mail received so far.
func (b *SMTPServer) Received() []Mail {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Mail(nil), b.mail...)
}

// Wait waits (at most 15s) for the n-th message and returns it.
func (b *SMTPServer) Wait(t testing.TB, n int) Mail {
	t.Helper()
	Eventually(t, fmt.Sprintf("message %d arrives", n), func() bool { return len(b.Received()) >= n })
	return b.Received()[n-1]
}
