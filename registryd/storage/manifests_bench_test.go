package storage

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
)

// BenchmarkPutManifest stores a new image manifest under a new tag per
// operation, 16 at a time, on the filesystem driver (the bench's manifest
// PUT without HTTP), and reports the process's CPU time per PUT.
func BenchmarkPutManifest(b *testing.B) {
	ctx := context.Background()
	s := filesystemStore(b)
	var n atomic.Int64
	b.SetParallelism(8) // 16 goroutines on 2 CPUs
	cpu := processCPU(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			content := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":2},"layers":[],"annotations":{"i":"%d"}}`, digest.FromString("{}"), i)
			if err := s.PutManifest(ctx, "bench/manifests", digest.FromBytes(content), content, fmt.Sprintf("t%d", i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64((processCPU(b)-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}
