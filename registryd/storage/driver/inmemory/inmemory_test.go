package inmemory_test

import (
	"testing"

	"github.com/berth-dev/berth/registryd/storage/driver"
	"github.com/berth-dev/berth/registryd/storage/driver/inmemory"
	"github.com/berth-dev/berth/registryd/storage/driver/testsuites"
)

func TestInMemory(t *testing.T) {
	testsuites.Run(t, func(t *testing.T) driver.StorageDriver { return inmemory.New() })
}
