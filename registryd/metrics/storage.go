package metrics

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-dev/berth/registryd/storage/driver"
)

// InstrumentDriver returns d with every operation timed into
// registryd_storage_operation_duration_seconds (Writer and Reader time the
// opening only; Commit is timed on its own). Unwrap returns d.
func (m *Metrics) InstrumentDriver(d driver.StorageDriver) driver.StorageDriver {
	return &instrumented{d: d, m: m, name: d.Name()}
}

type instrumented struct {
	d    driver.StorageDriver
	m    *Metrics
	name string
}

// Unwrap returns the instrumented driver.
func (i *instrumented) Unwrap() driver.StorageDriver { return i.d }

// observe records one operation that started at start and ended with err.
func (i *instrumented) observe(op string, start time.Time, err error) {
	i.m.storageDuration.WithLabelValues(i.name, op).Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, driver.ErrNotFound) && !errors.Is(err, context.Canceled) {
		i.m.storageErrors.WithLabelValues(i.name, op).Inc()
	}
}

func (i *instrumented) Name() string { return i.name }

func (i *instrumented) GetContent(ctx context.Context, path string) ([]byte, error) {
	start := time.Now()
	b, err := i.d.GetContent(ctx, path)
	i.observe("GetContent", start, err)
	return b, err
}

func (i *instrumented) PutContent(ctx context.Context, path string, content []byte) error {
	start := time.Now()
	err := i.d.PutContent(ctx, path, content)
	i.observe("PutContent", start, err)
	return err
}

// PutContents is timed as one operation, whatever the number of files.
func (i *instrumented) PutContents(ctx context.Context, groups ...[]driver.ContentWrite) error {
	start := time.Now()
	err := driver.PutContents(ctx, i.d, groups...)
	i.observe("PutContents", start, err)
	return err
}

func (i *instrumented) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	start := time.Now()
	rc, err := i.d.Reader(ctx, path, offset)
	i.observe("Reader", start, err)
	return rc, err
}

func (i *instrumented) Writer(ctx context.Context, path string, append bool) (driver.FileWriter, error) {
	start := time.Now()
	w, err := i.d.Writer(ctx, path, append)
	i.observe("Writer", start, err)
	if err != nil {
		return nil, err
	}
	return &instrumentedWriter{FileWriter: w, i: i}, nil
}

func (i *instrumented) Stat(ctx context.Context, path string) (driver.FileInfo, error) {
	start := time.Now()
	fi, err := i.d.Stat(ctx, path)
	i.observe("Stat", start, err)
	return fi, err
}

func (i *instrumented) List(ctx context.Context, path string) ([]string, error) {
	start := time.Now()
	l, err := i.d.List(ctx, path)
	i.observe("List", start, err)
	return l, err
}

func (i *instrumented) Move(ctx context.Context, sourcePath, destPath string) error {
	start := time.Now()
	err := i.d.Move(ctx, sourcePath, destPath)
	i.observe("Move", start, err)
	return err
}

func (i *instrumented) Delete(ctx context.Context, path string) error {
	start := time.Now()
	err := i.d.Delete(ctx, path)
	i.observe("Delete", start, err)
	return err
}

func (i *instrumented) RedirectURL(ctx context.Context, method, path string) (string, error) {
	start := time.Now()
	u, err := i.d.RedirectURL(ctx, method, path)
	i.observe("RedirectURL", start, err)
	return u, err
}

func (i *instrumented) Walk(ctx context.Context, path string, f driver.WalkFn, options ...driver.WalkOption) error {
	start := time.Now()
	err := i.d.Walk(ctx, path, f, options...)
	i.observe("Walk", start, err)
	return err
}

type instrumentedWriter struct {
	driver.FileWriter
	i *instrumented
}

func (w *instrumentedWriter) Commit(ctx context.Context) error {
	start := time.Now()
	err := w.FileWriter.Commit(ctx)
	w.i.observe("Commit", start, err)
	return err
}

var _ prometheus.Collector = (*notificationCollector)(nil)
