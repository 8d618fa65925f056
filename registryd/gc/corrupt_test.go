package gc_test

import (
	"errors"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/gc"
	"github.com/berth-dev/berth/registryd/storage"
	"github.com/berth-dev/berth/registryd/storage/driver"
	"github.com/berth-dev/berth/registryd/storage/driver/inmemory"
)

// TestDamagedStores covers stores a registry did not leave in a clean
// state: the collector must never guess about what a live manifest
// references.
func TestDamagedStores(t *testing.T) {
	stray := []byte("stray")
	tests := map[string]struct {
		// damage writes the store's live part; it returns the digests
		// that must survive.
		damage  func(t *testing.T, s *storage.Store, drv driver.StorageDriver) []digest.Digest
		wantErr bool
	}{
		"live manifest that is not JSON stops the run": {
			damage: func(t *testing.T, s *storage.Store, drv driver.StorageDriver) []digest.Digest {
				bad := []byte("not a manifest")
				d := digest.FromBytes(bad)
				put(t, drv, storage.BlobDataPath(d), bad)
				put(t, drv, storage.RevisionLinkPath("app", d), []byte(d))
				tag(t, s, d)
				return []digest.Digest{d, digest.FromBytes(stray)}
			},
			wantErr: true,
		},
		"live manifest without content is reported and marks nothing": {
			damage: func(t *testing.T, s *storage.Store, drv driver.StorageDriver) []digest.Digest {
				d := digest.FromString("gone")
				put(t, drv, storage.RevisionLinkPath("app", d), []byte(d))
				tag(t, s, d)
				return nil
			},
		},
		"sha512 layer stored under its sha256 through a _layers link": {
			damage: func(t *testing.T, s *storage.Store, drv driver.StorageDriver) []digest.Digest {
				layer := []byte("layer pushed by sha512")
				d256, d512 := digest.FromBytes(layer), digest.SHA512.FromBytes(layer)
				put(t, drv, storage.BlobDataPath(d256), layer)
				put(t, drv, storage.LayerLinkPath("app", d512), []byte(d256))
				cfg := []byte("{}")
				if _, err := s.PutBlob(ctx, "app", digest.FromBytes(cfg), cfg); err != nil {
					t.Fatal(err)
				}
				m := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
					`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + digest.FromBytes(cfg).String() + `","size":2},` +
					`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + d512.String() + `","size":22}]}`)
				md := digest.FromBytes(m)
				if err := s.PutManifest(ctx, "app", md, m); err != nil {
					t.Fatal(err)
				}
				tag(t, s, md)
				return []digest.Digest{md, d256, digest.FromBytes(cfg)}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			drv := inmemory.New()
			s := storage.New(drv)
			if _, err := s.PutBlob(ctx, "app", digest.FromBytes(stray), stray); err != nil {
				t.Fatal(err)
			}
			keep := tc.damage(t, s, drv)
			sum, err := gc.Run(ctx, drv, gc.Options{DeleteUntagged: true})
			if tc.wantErr {
				if err == nil || errors.Is(err, gc.ErrPartial) || sum.Error == "" {
					t.Fatalf("Run = %v, want a mark error", err)
				}
				if sum.BlobsDeleted+sum.ManifestsDeleted+sum.LayerLinksDeleted != 0 {
					t.Errorf("a failed mark deleted something: %+v", sum)
				}
			} else if err != nil {
				t.Fatalf("Run: %v", err)
			}
			onDisk := map[digest.Digest]bool{}
			if err := s.WalkBlobs(ctx, func(b storage.BlobInfo) error { onDisk[b.Digest] = true; return nil }); err != nil {
				t.Fatal(err)
			}
			for _, d := range keep {
				if !onDisk[d] {
					t.Errorf("blob %s was deleted", d)
				}
			}
			if !tc.wantErr && onDisk[digest.FromBytes(stray)] {
				t.Errorf("the stray blob survived")
			}
		})
	}
}

func put(t *testing.T, drv driver.StorageDriver, p string, content []byte) {
	t.Helper()
	if err := drv.PutContent(ctx, p, content); err != nil {
		t.Fatal(err)
	}
}

func tag(t *testing.T, s *storage.Store, d digest.Digest) {
	t.Helper()
	if err := s.Tag(ctx, "app", "v1", d); err != nil {
		t.Fatal(err)
	}
}
