package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/berth-dev/berth/registryd/storage/driver"
)

// FileCheck fails while path exists: creating the file takes the registry
// out of rotation, removing it brings it back.
func FileCheck(path string) Checker {
	return CheckFunc(func(context.Context) error {
		if _, err := os.Stat(path); err == nil {
			return errors.New("file exists")
		}
		return nil
	})
}

// HTTPCheck sends HEAD to uri with headers and fails unless the answer has
// status (200 when 0) within timeout (no limit when 0).
func HTTPCheck(uri string, status int, timeout time.Duration, headers http.Header, transport http.RoundTripper) Checker {
	if status == 0 {
		status = http.StatusOK
	}
	client := &http.Client{Timeout: timeout, Transport: transport}
	return CheckFunc(func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, uri, nil)
		if err != nil {
			return err
		}
		for k, vs := range headers {
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("HEAD %s: %w", uri, err)
		}
		resp.Body.Close()
		if resp.StatusCode != status {
			return fmt.Errorf("HEAD %s: status %d, want %d", uri, resp.StatusCode, status)
		}
		return nil
	})
}

// TCPCheck fails unless a TCP connection to addr opens within timeout (no
// limit when 0).
func TCPCheck(addr string, timeout time.Duration) Checker {
	return CheckFunc(func(ctx context.Context) error {
		d := net.Dialer{Timeout: timeout}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return conn.Close()
	})
}

// StorageDriverCheck stats the storage root through drv. A root that does
// not exist yet (an empty registry) is healthy: the backend answered.
func StorageDriverCheck(drv driver.StorageDriver) Checker {
	return CheckFunc(func(ctx context.Context) error {
		_, err := drv.Stat(ctx, "/")
		if errors.Is(err, driver.ErrNotFound) {
			return nil
		}
		return err
	})
}
