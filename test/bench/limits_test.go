package bench

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The machine's limits, measured in the same run as the registries, on
// the same filesystem, with the same bytes: what a registry could reach
// at best if it did nothing but the unavoidable work.

// sha256Throughput hashes total bytes of buf (repeated) on one goroutine
// and returns MB/s (10^6 bytes a second): the ceiling of one core
// verifying a digest.
func sha256Throughput(buf []byte, total int64) float64 {
	h := sha256.New()
	start := time.Now()
	var done int64
	for done < total {
		n := min(int64(len(buf)), total-done)
		h.Write(buf[:n])
		done += n
	}
	h.Sum(nil)
	return mbps(done, time.Since(start))
}

// writeFsyncThroughput writes files files of size bytes each from buf
// into dir on writers goroutines, each file written in 1 MiB writes and
// fsynced before it is closed, and returns MB/s. The files are removed
// afterwards, outside the timing.
func writeFsyncThroughput(dir string, buf []byte, files, writers int, size int64) (float64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	const chunk = 1 << 20
	write := func(i int) error {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprint(i)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		for off := int64(0); off < size; off += chunk {
			n := min(chunk, size-off)
			start := off % int64(len(buf)-chunk)
			if _, err := f.Write(buf[start : start+n]); err != nil {
				f.Close()
				return err
			}
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	took, err := fanOut(files, writers, write)
	if err != nil {
		return 0, err
	}
	return mbps(int64(files)*size, took), nil
}

// smallFileRate creates files files of len(content) bytes in dir on
// workers goroutines (create, write, fsync, close) and returns files per
// second: the ceiling of anything that must make a small write durable.
func smallFileRate(dir string, content []byte, files, workers int) (float64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	create := func(i int) error {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprint(i)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		if _, err := f.Write(content); err != nil {
			f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	took, err := fanOut(files, workers, create)
	if err != nil {
		return 0, err
	}
	return float64(files) / took.Seconds(), nil
}

// fanOut runs fn(i) for i below n on conc goroutines.
func fanOut(n, conc int, fn func(i int) error) (time.Duration, error) {
	return parallel(context.Background(), n, conc, func(_ context.Context, i int) error { return fn(i) })
}

func mbps(bytes int64, d time.Duration) float64 { return float64(bytes) / 1e6 / d.Seconds() }
