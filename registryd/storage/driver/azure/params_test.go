package azure

import (
	"testing"
	"time"
)

// TestAzureServiceEndpoint: without serviceurl the driver talks to
// https://<accountname>.blob.<realm>, realm defaulting to the public
// cloud's; serviceurl, when set, is used as is. No request is sent.
func TestAzureServiceEndpoint(t *testing.T) {
	tests := map[string]struct {
		p    Parameters
		want string
	}{
		"default realm": {Parameters{AccountName: "acct"}, "https://acct.blob.core.windows.net/c"},
		"realm":         {Parameters{AccountName: "acct", Realm: "core.chinacloudapi.cn"}, "https://acct.blob.core.chinacloudapi.cn/c"},
		"serviceurl":    {Parameters{AccountName: "acct", Realm: "ignored.example", ServiceURL: "http://127.0.0.1:10000/acct/"}, "http://127.0.0.1:10000/acct/c"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p := tt.p
			p.AccountKey, p.Container = "a2V5", "c"
			d, err := newDriver(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := d.container.URL(); got != tt.want {
				t.Errorf("container URL = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestAzureCopyPolling: copy_status_poll_max_retry and
// copy_status_poll_delay default to 5 and 100ms and are kept when given
// (-1: no polling); Azurite completes copies at once, so the polling loop
// itself only runs against Azure.
func TestAzureCopyPolling(t *testing.T) {
	base := Parameters{AccountName: "acct", AccountKey: "a2V5", Container: "c"}
	d, err := newDriver(base)
	if err != nil {
		t.Fatal(err)
	}
	if *d.p.CopyStatusPollMaxRetry != DefaultCopyStatusPollMaxRetry || d.p.CopyStatusPollDelay != DefaultCopyStatusPollDelay {
		t.Errorf("defaults = %d, %s", *d.p.CopyStatusPollMaxRetry, d.p.CopyStatusPollDelay)
	}
	none := -1
	p := base
	p.CopyStatusPollMaxRetry, p.CopyStatusPollDelay = &none, 2*time.Second
	if d, err = newDriver(p); err != nil {
		t.Fatal(err)
	}
	if *d.p.CopyStatusPollMaxRetry != -1 || d.p.CopyStatusPollDelay != 2*time.Second {
		t.Errorf("given = %d, %s", *d.p.CopyStatusPollMaxRetry, d.p.CopyStatusPollDelay)
	}
}
