package s3_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/internal/testutil/storagetest"
	"github.com/berth-dev/berth/registryd/storage/driver/s3"
)

// TestS3KeysReachTheService: storageclass, encrypt and useragent are sent
// with every request that writes an object — whole, in parts, by a move —
// as the SDK's debug log (loglevel: debug) shows. (versitygw stores
// neither storage class nor encryption, so the requests are what can be
// checked.)
func TestS3KeysReachTheService(t *testing.T) {
	var log testutil.LockedBuffer
	p := params(t, "keys")(t, storagetest.NewRoot())
	p.StorageClass = "REDUCED_REDUNDANCY"
	p.Encrypt = true
	p.UserAgent = "berth-keys-test"
	p.LogLevel = "debug"
	p.Logger = slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d := storagetest.Open(t, s3.New, p)
	ctx := t.Context()
	if err := d.PutContent(ctx, "/whole", []byte("x")); err != nil {
		t.Fatal(err)
	}
	w, err := d.Writer(ctx, "/parts", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, s3.MinChunkSize+1)); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Move(ctx, "/whole", "/moved"); err != nil {
		t.Fatal(err)
	}
	requests := map[string]string{}
	for _, rec := range strings.Split(log.String(), "\n") {
		for _, op := range []string{"x-id=PutObject", "?uploads", "x-id=CopyObject"} {
			if strings.Contains(rec, "Request") && strings.Contains(rec, op) {
				requests[op] = rec
			}
		}
	}
	for _, op := range []string{"x-id=PutObject", "?uploads", "x-id=CopyObject"} {
		rec, ok := requests[op]
		if !ok {
			t.Errorf("no %s request in the debug log", op)
			continue
		}
		for _, want := range []string{`X-Amz-Storage-Class: REDUCED_REDUNDANCY`, `X-Amz-Server-Side-Encryption: AES256`, "berth-keys-test"} {
			if !strings.Contains(rec, want) {
				t.Errorf("the %s request lacks %q: %.600s", op, want, rec)
			}
		}
	}
}
