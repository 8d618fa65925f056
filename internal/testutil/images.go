package testutil

import (
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ImageBlobs reads an image's config and compressed layers, by digest, as
// a registry serves them: what a test compares byte for byte after a pull.
// An error fails the test.
func ImageBlobs(t TB, img v1.Image) map[string][]byte {
	t.Helper()
	out, err := ReadImageBlobs(img)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ReadImageBlobs is ImageBlobs for goroutines that cannot fail the test.
func ReadImageBlobs(img v1.Image) (map[string][]byte, error) {
	out := map[string][]byte{}
	cfgName, err := img.ConfigName()
	if err != nil {
		return nil, err
	}
	if out[cfgName.String()], err = img.RawConfigFile(); err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", d, err)
		}
		out[d.String()] = b
	}
	return out, nil
}
