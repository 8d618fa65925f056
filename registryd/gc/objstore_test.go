package gc_test

import (
	"fmt"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/internal/testutil/storagetest"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// TestCollectRandomStoresOnObjectStores makes the checks of
// TestCollectRandomStores on the azure, s3 and gcs drivers against their
// emulators: what is reachable still pulls byte for byte, and every
// unreachable blob, revision and _layers link is gone.
func TestCollectRandomStoresOnObjectStores(t *testing.T) {
	seeds := []uint64{1, 2}
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, store := range testutil.ObjectStorages() {
		for _, seed := range seeds {
			for _, untagged := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/seed=%d/delete-untagged=%v", store.Name, seed, untagged), func(t *testing.T) {
					t.Parallel()
					drv := storagetest.NewDriver(t, store)
					collectRandomStore(t, serve(t, drv), drv, seed, untagged)
				})
			}
		}
	}
}
