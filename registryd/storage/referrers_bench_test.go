package storage

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/storage/driver/filesystem"
)

// BenchmarkReferrersIndexed answers referrers of one subject in a
// repository of 10,000 manifests on the filesystem driver, with the index
// up to date: the cost of every request once the index exists.
func BenchmarkReferrersIndexed(b *testing.B) {
	ctx := context.Background()
	s := filesystemStore(b)
	drv := s.driver
	const repo = "bench/referrers"
	subject := digest.FromString("subject")
	for i := range 10000 {
		var content []byte
		if i < 10 {
			content = fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":1},"annotations":{"i":"%d"}}`, digest.FromString("{}"), subject, i)
		} else {
			content = fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":2},"layers":[]}`, digest.FromString(fmt.Sprint(i)))
		}
		d := digest.FromBytes(content)
		if err := drv.PutContent(ctx, BlobDataPath(d), content); err != nil {
			b.Fatal(err)
		}
		if err := drv.PutContent(ctx, RevisionLinkPath(repo, d), []byte(d)); err != nil {
			b.Fatal(err)
		}
	}
	if got, err := s.Referrers(ctx, repo, subject, ""); err != nil || len(got) != 10 {
		b.Fatalf("referrers: %d, %v", len(got), err)
	}
	cpu := processCPU(b)
	for b.Loop() {
		if _, err := s.Referrers(ctx, repo, subject, ""); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((processCPU(b)-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// filesystemStore is a Store on the filesystem driver in a temporary
// directory.
func filesystemStore(b *testing.B) *Store {
	drv, err := filesystem.New(filesystem.Parameters{RootDirectory: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	return New(drv)
}

// processCPU is the CPU time this process has used: a cost that does not
// grow when other work shares the machine, unlike ns/op.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
