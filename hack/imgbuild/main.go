// Command imgbuild packs static binaries into an OCI image tarball without a
// container engine, so images can be built on machines (and in CI) that have
// no Docker.
//
// The image is two layers on an empty base:
//
//  1. a base layer: /etc/passwd and /etc/group with root and the non-root
//     user, the CA bundle at /etc/ssl/certs/ca-certificates.crt and a
//     world-writable /tmp. It is byte-identical for every image built with
//     the same user and CA bundle, so a node stores it once;
//  2. the files given with -add (the binary and anything else).
//
// Every timestamp (tar entries, config "created", history) is the Unix time
// in SOURCE_DATE_EPOCH, or 0, and every owner is root with fixed modes, so
// the same inputs give the same image digest. The output is the tarball
// format `docker load` and `ctr images import` both read, with the -tag as
// its repository tag.
//
//	imgbuild -tag berth/registryd:dev -o bin/images/registryd.tar \
//	  -add bin/registryd:/registryd -entrypoint /registryd
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

type options struct {
	tag        string
	out        string
	adds       listFlag
	entrypoint listFlag
	args       listFlag
	env        listFlag
	ports      listFlag
	user       int
	caFile     string
	workdir    string
	arch       string
	epoch      time.Time
}

func main() {
	var o options
	flag.StringVar(&o.tag, "tag", "", "image reference written into the tarball, e.g. berth/manager:dev (required)")
	flag.StringVar(&o.out, "o", "", "output tarball path (required)")
	flag.Var(&o.adds, "add", "SRC:DEST file to add (repeatable); a file that is executable on disk is 0755 in the image, else 0644")
	flag.Var(&o.entrypoint, "entrypoint", "entrypoint element (repeatable, in order)")
	flag.Var(&o.args, "arg", "default argument (Cmd) element (repeatable, in order)")
	flag.Var(&o.env, "env", "KEY=VALUE environment variable (repeatable)")
	flag.Var(&o.ports, "port", "exposed port, e.g. 5000/tcp (repeatable)")
	flag.IntVar(&o.user, "user", 65532, "numeric uid and gid the image runs as")
	flag.StringVar(&o.caFile, "ca", "/etc/ssl/certs/ca-certificates.crt", "CA bundle copied to /etc/ssl/certs/ca-certificates.crt (empty: none)")
	flag.StringVar(&o.workdir, "workdir", "/", "working directory")
	flag.StringVar(&o.arch, "arch", runtime.GOARCH, "image architecture")
	flag.Parse()

	epoch, err := sourceDateEpoch()
	if err != nil {
		fail(err)
	}
	o.epoch = epoch
	if err := run(o); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "imgbuild:", err)
	os.Exit(1)
}

// sourceDateEpoch honours the reproducible-builds convention.
func sourceDateEpoch() (time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	s, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", v, err)
	}
	return time.Unix(s, 0).UTC(), nil
}

func run(o options) error {
	if o.tag == "" || o.out == "" {
		return errors.New("-tag and -o are required")
	}
	if len(o.entrypoint) == 0 {
		return errors.New("-entrypoint is required")
	}
	tag, err := name.NewTag(o.tag)
	if err != nil {
		return fmt.Errorf("-tag: %w", err)
	}

	base, err := baseFiles(o.user, o.caFile)
	if err != nil {
		return err
	}
	app, err := addedFiles(o.adds)
	if err != nil {
		return err
	}

	img := empty.Image
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, l := range []struct {
		files   []file
		comment string
	}{
		{base, "users, CA certificates, /tmp"},
		{app, "added files"},
	} {
		layer, err := tarLayer(l.files, o.epoch)
		if err != nil {
			return err
		}
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:     layer,
			MediaType: types.OCILayer,
			History: v1.History{
				Created:   v1.Time{Time: o.epoch},
				CreatedBy: "imgbuild: " + l.comment,
			},
		})
		if err != nil {
			return err
		}
	}

	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = o.arch
	cf.Created = v1.Time{Time: o.epoch}
	cf.Config.Entrypoint = o.entrypoint
	cf.Config.Cmd = o.args
	cf.Config.User = fmt.Sprintf("%d:%d", o.user, o.user)
	cf.Config.WorkingDir = o.workdir
	cf.Config.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}, o.env...)
	if len(o.ports) > 0 {
		cf.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range o.ports {
			cf.Config.ExposedPorts[p] = struct{}{}
		}
	}
	cf.Config.Labels = map[string]string{"org.opencontainers.image.ref.name": tag.TagStr()}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return err
	}

	if err := os.MkdirAll(path.Dir(o.out), 0o755); err != nil {
		return err
	}
	tmp := o.out + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		return err
	}
	if err := os.Rename(tmp, o.out); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s %s %s\n", o.out, tag, digest)
	return nil
}

// file is one tar entry: a directory when data is nil and dir is true.
type file struct {
	name string
	mode int64
	dir  bool
	data []byte
}

func baseFiles(uid int, caFile string) ([]file, error) {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", uid, uid)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", uid)
	files := []file{
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "tmp", mode: 0o1777, dir: true},
	}
	if caFile != "" {
		ca, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("-ca: %w", err)
		}
		files = append(files, file{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: ca})
	}
	return files, nil
}

func addedFiles(adds []string) ([]file, error) {
	var files []file
	for _, a := range adds {
		src, dst, ok := strings.Cut(a, ":")
		if !ok || src == "" || !strings.HasPrefix(dst, "/") {
			return nil, fmt.Errorf("-add %q: want SRC:/absolute/dest", a)
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, fmt.Errorf("-add: %w", err)
		}
		st, err := os.Stat(src)
		if err != nil {
			return nil, err
		}
		mode := int64(0o644)
		if st.Mode()&0o111 != 0 {
			mode = 0o755
		}
		files = append(files, file{name: strings.TrimPrefix(path.Clean(dst), "/"), mode: mode, data: data})
	}
	return files, nil
}

// tarLayer writes files, and every parent directory they need, in sorted
// order with fixed owners and times, so equal inputs give equal digests.
func tarLayer(files []file, epoch time.Time) (v1.Layer, error) {
	entries := map[string]file{}
	for _, f := range files {
		entries[f.name] = f
		for d := path.Dir(f.name); d != "." && d != "/"; d = path.Dir(d) {
			if _, ok := entries[d]; !ok {
				entries[d] = file{name: d, mode: 0o755, dir: true}
			}
		}
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		f := entries[n]
		h := &tar.Header{
			Name:    f.name,
			Mode:    f.mode,
			ModTime: epoch,
			Format:  tar.FormatPAX,
		}
		if f.dir {
			h.Typeflag = tar.TypeDir
			h.Name += "/"
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
}
