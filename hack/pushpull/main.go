// Command pushpull proves a registry works the way a user would: it pushes
// a random image (go-containerregistry's random.Image) to -ref with basic
// auth, pulls it back and checks that the manifest, the config and every
// layer are byte-identical to what it pushed. `make demo` runs it through a
// `kubectl port-forward`.
//
//	pushpull -ref 127.0.0.1:5000/demo/hello:v1 -user alice -password-file pw
//
// With -garbage N it then makes garbage beside the image: it pushes N more
// random images to the same repository and deletes their manifests, so
// their blobs are referenced by nothing (what a garbage collection frees).
//
// The password comes from -password-file or the PUSHPULL_PASSWORD
// environment variable, never a flag (it would show in ps). -insecure
// speaks plain HTTP; -ca trusts a PEM bundle for HTTPS.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func main() {
	ref := flag.String("ref", "", "image reference to push and pull (host:port/repo:tag)")
	user := flag.String("user", "", "username (empty: anonymous)")
	passwordFile := flag.String("password-file", "", "file holding the password (else $PUSHPULL_PASSWORD)")
	insecure := flag.Bool("insecure", false, "plain HTTP")
	caFile := flag.String("ca", "", "PEM CA bundle to trust for HTTPS (default: the system's)")
	size := flag.Int64("size", 1<<20, "bytes per layer")
	layers := flag.Int64("layers", 2, "number of layers")
	garbage := flag.Int("garbage", 0, "then push this many more images and delete their manifests (garbage to collect)")
	flag.Parse()
	if err := run(*ref, *user, *passwordFile, *caFile, *insecure, *size, *layers, *garbage); err != nil {
		fmt.Fprintln(os.Stderr, "pushpull:", err)
		os.Exit(1)
	}
}

func run(refStr, user, passwordFile, caFile string, insecure bool, size, layers int64, garbage int) error {
	if refStr == "" {
		return errors.New("-ref is required")
	}
	var nameOpts []name.Option
	if insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	ref, err := name.ParseReference(refStr, nameOpts...)
	if err != nil {
		return err
	}
	opts := []remote.Option{}
	if user != "" {
		password := os.Getenv("PUSHPULL_PASSWORD")
		if passwordFile != "" {
			b, err := os.ReadFile(passwordFile)
			if err != nil {
				return err
			}
			password = strings.TrimRight(string(b), "\r\n")
		}
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: user, Password: password}))
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s: no PEM certificate", caFile)
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		opts = append(opts, remote.WithTransport(t))
	}

	img, err := random.Image(size, layers)
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	fmt.Printf("pushed %s@%s (%d layers of %d bytes)\n", ref, digest, layers, size)

	got, err := remote.Image(ref, opts...)
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	if err := same(img, got); err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	fmt.Printf("pulled %s@%s: manifest, config and every layer byte-identical\n", ref, digest)
	return makeGarbage(ref.Context(), garbage, size, layers, opts)
}

// makeGarbage pushes n random images to repo and deletes their manifests.
func makeGarbage(repo name.Repository, n int, size, layers int64, opts []remote.Option) error {
	var freed int64
	for i := range n {
		img, err := random.Image(size, layers)
		if err != nil {
			return err
		}
		d, err := img.Digest()
		if err != nil {
			return err
		}
		if err := remote.Write(repo.Tag(fmt.Sprintf("garbage-%d", i)), img, opts...); err != nil {
			return fmt.Errorf("push garbage: %w", err)
		}
		if err := remote.Delete(repo.Digest(d.String()), opts...); err != nil {
			return fmt.Errorf("delete %s@%s: %w", repo, d, err)
		}
		freed += size * layers
	}
	if n > 0 {
		fmt.Printf("made garbage: %d images pushed to %s and their manifests deleted (about %d MiB of layers nothing references)\n", n, repo, freed>>20)
	}
	return nil
}

// same compares two images byte for byte.
func same(want, got v1.Image) error {
	for _, part := range []struct {
		what string
		get  func(v1.Image) ([]byte, error)
	}{
		{"manifest", func(i v1.Image) ([]byte, error) { return i.RawManifest() }},
		{"config", func(i v1.Image) ([]byte, error) { return i.RawConfigFile() }},
	} {
		w, err := part.get(want)
		if err != nil {
			return err
		}
		g, err := part.get(got)
		if err != nil {
			return err
		}
		if !bytes.Equal(w, g) {
			return fmt.Errorf("%s differs", part.what)
		}
	}
	wl, err := want.Layers()
	if err != nil {
		return err
	}
	gl, err := got.Layers()
	if err != nil {
		return err
	}
	if len(wl) != len(gl) {
		return fmt.Errorf("%d layers, want %d", len(gl), len(wl))
	}
	for i := range wl {
		w, err := layerBytes(wl[i])
		if err != nil {
			return err
		}
		g, err := layerBytes(gl[i])
		if err != nil {
			return err
		}
		if !bytes.Equal(w, g) {
			return fmt.Errorf("layer %d differs", i)
		}
	}
	return nil
}

func layerBytes(l v1.Layer) ([]byte, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}
