package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"testing"

	"github.com/opencontainers/go-digest"
)

// BenchmarkUploadPush pushes 16 MiB blobs through upload sessions (one
// append, then the commit) on the filesystem driver, and reports the CPU
// time of the process per push beside the wall time, which a busy machine
// inflates. The blobs differ in their last 8 bytes only, and their digests
// are computed from a saved SHA-256 state, so that the benchmark's own
// hashing is a 64-byte block per push.
func BenchmarkUploadPush(b *testing.B) {
	const size = 16 << 20
	ctx := context.Background()
	s := filesystemStore(b)
	content := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	prefix := sha256.New()
	prefix.Write(content[:size-64])
	state, err := prefix.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	cpu := processCPU(b)
	i := uint64(0)
	for b.Loop() {
		i++
		binary.BigEndian.PutUint64(content[size-8:], i)
		h := sha256.New()
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
			b.Fatal(err)
		}
		h.Write(content[size-64:])
		d := digest.NewDigest(digest.SHA256, h)
		u, err := s.CreateUpload(ctx, "bench/push")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.AppendUpload(ctx, "bench/push", u.ID, 0, bytes.NewReader(content)); err != nil {
			b.Fatal(err)
		}
		if _, err := s.CommitUpload(ctx, "bench/push", u.ID, d); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((processCPU(b)-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}
