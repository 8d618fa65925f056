package server

import (
	"fmt"
	"maps"
	"slices"

	"github.com/berth-dev/berth/registryd/configuration"
	"github.com/berth-dev/berth/registryd/storage/driver"
	"github.com/berth-dev/berth/registryd/storage/driver/filesystem"
	"github.com/berth-dev/berth/registryd/storage/driver/inmemory"
)

// driverFactory builds a storage driver from its configuration section.
type driverFactory func(s *configuration.Storage) (driver.StorageDriver, error)

// storageDrivers are the drivers this build of registryd has, by the name of
// their configuration section. A configuration that names any other is
// refused at start by configuration.CheckSupported.
var storageDrivers = map[string]driverFactory{
	configuration.DriverFilesystem: func(s *configuration.Storage) (driver.StorageDriver, error) {
		root := s.Filesystem.RootDirectory
		if root == "" {
			root = configuration.DefaultRootDirectory
		}
		return filesystem.New(filesystem.Parameters{RootDirectory: root, MaxThreads: s.Filesystem.MaxThreads})
	},
	configuration.DriverInMemory: func(*configuration.Storage) (driver.StorageDriver, error) {
		return inmemory.New(), nil
	},
}

// StorageDriverNames lists the storage drivers this build has.
func StorageDriverNames() []string { return slices.Sorted(maps.Keys(storageDrivers)) }

// NewStorageDriver builds the storage driver the configuration names. The
// garbage collector uses it too, so `serve` and `garbage-collect` always see
// the same storage.
func NewStorageDriver(s *configuration.Storage) (driver.StorageDriver, error) {
	name := s.Driver()
	factory, ok := storageDrivers[name]
	if !ok {
		return nil, fmt.Errorf("storage.%s: not supported yet", name)
	}
	d, err := factory(s)
	if err != nil {
		return nil, fmt.Errorf("storage.%s: %w", name, err)
	}
	return d, nil
}
