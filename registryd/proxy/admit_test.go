package proxy_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/registryd/handlers"
	"github.com/berth-dev/berth/registryd/proxy"
	"github.com/berth-dev/berth/registryd/storage"
	"github.com/berth-dev/berth/registryd/storage/driver"
	fsdriver "github.com/berth-dev/berth/registryd/storage/driver/filesystem"
)

// admissions is a write admission that counts, and a driver that records
// every write made while no admission was held.
type admissions struct {
	driver.StorageDriver
	refuse        bool
	held, granted atomic.Int64
	unadmitted    atomic.Int64
	writes        atomic.Int64
}

func (a *admissions) admit() (func(), bool) {
	if a.refuse {
		return nil, false
	}
	a.held.Add(1)
	a.granted.Add(1)
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			a.held.Add(-1)
		}
	}, true
}

func (a *admissions) write() {
	a.writes.Add(1)
	if a.held.Load() == 0 {
		a.unadmitted.Add(1)
	}
}

func (a *admissions) PutContent(ctx context.Context, path string, content []byte) error {
	a.write()
	return a.StorageDriver.PutContent(ctx, path, content)
}

func (a *admissions) Writer(ctx context.Context, path string, append bool) (driver.FileWriter, error) {
	a.write()
	return a.StorageDriver.Writer(ctx, path, append)
}

func (a *admissions) Move(ctx context.Context, from, to string) error {
	a.write()
	return a.StorageDriver.Move(ctx, from, to)
}

// TestStoringHoldsTheWriteAdmission: every storage write of a pull through
// the cache happens while the server's write admission is held (so a
// switch to read-only, which waits for admitted writes, never reports
// read-only while the cache is still storing), and a refused admission
// stores nothing.
func TestStoringHoldsTheWriteAdmission(t *testing.T) {
	up := startRegistryd(t, inmemory(), "", nil)
	img := pushImage(t, up, "lib/app:v1", 2)
	want, _ := read(img)

	for _, refuse := range []bool{false, true} {
		root := t.TempDir()
		fs, err := fsdriver.New(fsdriver.Parameters{RootDirectory: root})
		if err != nil {
			t.Fatal(err)
		}
		a := &admissions{StorageDriver: fs, refuse: refuse}
		c, err := proxy.New(storage.New(a), proxy.Options{RemoteURL: "http://" + up.addr, Admit: a.admit})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(handlers.New(a, handlers.WithPullThrough(c)))
		cache := &registry{addr: strings.TrimPrefix(srv.URL, "http://"), root: root, logs: &testutil.LockedBuffer{}, stop: srv.Close}
		got, err := pull(ref(t, cache, "lib/app:v1"))
		if err != nil {
			t.Fatal(err)
		}
		samePulled(t, "pull through the cache", got, want)
		if !refuse {
			for d := range want.blobs {
				waitStored(t, root, d)
			}
		}
		srv.Close()
		switch {
		case refuse && a.writes.Load() != 0:
			t.Errorf("admission refused, yet %d storage writes", a.writes.Load())
		case !refuse && a.writes.Load() == 0:
			t.Error("nothing was stored")
		case a.unadmitted.Load() != 0:
			t.Errorf("%d of %d storage writes happened without the write admission", a.unadmitted.Load(), a.writes.Load())
		case a.held.Load() != 0:
			t.Errorf("%d admissions never released", a.held.Load())
		}
	}
}
