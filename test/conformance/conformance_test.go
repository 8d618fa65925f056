// Package conformance runs the OCI Distribution Spec conformance suite
// (pinned in hack/conformance/go.mod, built by hack/conformance.sh) against
// the registryd binary on every storage driver — filesystem, inmemory, and
// azure, s3 and gcs against their emulators (Azurite, versitygw,
// fake-gcs-server), with redirects on as by default, so blob downloads
// from the object stores go through their signed URLs — and fails unless
// every check passes.
package conformance

import (
	"bytes"
	"context"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// suite returns the conformance binary: $OCI_CONFORMANCE when set (the
// Makefile sets it), else what hack/conformance.sh builds.
func suite(t *testing.T) string {
	t.Helper()
	return testutil.HackTool(t, "OCI_CONFORMANCE", "conformance.sh")
}

// junit is the part of the suite's junit.xml the test reads.
type junit struct {
	Tests  int `xml:"tests,attr"`
	Suites []struct {
		Tests     int `xml:"tests,attr"`
		Failures  int `xml:"failures,attr"`
		Errors    int `xml:"errors,attr"`
		Skipped   int `xml:"skipped,attr"`
		Testcases []struct {
			Name string `xml:"name,attr"`
			// Status is "skipped" for a skip (and for a check the
			// suite found unsupported); older suites wrote a
			// <skipped> element instead.
			Status  string    `xml:"status,attr"`
			Skipped *struct{} `xml:"skipped"`
			Failure *result   `xml:"failure"`
			Error   *result   `xml:"error"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

type result struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// allowedSkips are checks the suite may skip. "blob-mount-anonymous": a
// POST with mount= but no from= opens an upload (202) instead of
// mounting, as in Distribution; the suite records the 202 as a skip and
// falls back to POST+PUT, which must pass.
var allowedSkips = map[string]bool{
	"blob-mount-anonymous": true,
}

func TestMain(m *testing.M) { testutil.Main(m) }

func TestOCIConformance(t *testing.T) {
	bin := suite(t)
	for _, store := range testutil.Storages() {
		t.Run(store.Name, func(t *testing.T) {
			section := store.Section(t)
			reg := testutil.StartRegistry(t, "registryd", testutil.Registryd(t), func(addr string) string {
				return testutil.RegistryConfig(section, addr, "")
			})
			runSuite(t, bin, reg)
		})
	}
}

// runSuite runs the conformance program against reg and fails the test
// unless every check passes.
func runSuite(t *testing.T, bin string, reg *testutil.Registry) {
	results := t.TempDir()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	// The suite reads ./oci-conformance.yaml when present: run it in an
	// empty directory so that only the variables below configure it.
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(),
		"OCI_RESULTS_DIR="+results,
		"OCI_VERSION=1.1",
		"OCI_LOG=warn",
		"OCI_REGISTRY="+reg.Addr,
		"OCI_TLS=disabled",
		"OCI_REPO1=conformance/repo1",
		"OCI_REPO2=conformance/crossmount",
		// Every API and data set the suite has, beyond its defaults:
		// upload cancel is off by default; sparse manifests and tag
		// parameters are features registryd (like Distribution) does not
		// offer, and index validation refuses sparse indexes by design.
		"OCI_API_PULL=true",
		"OCI_API_PUSH=true",
		"OCI_API_BLOBS_ATOMIC=true",
		"OCI_API_BLOBS_DELETE=true",
		"OCI_API_BLOBS_MOUNT_ANONYMOUS=true",
		"OCI_API_BLOBS_UPLOAD_CANCEL=true",
		"OCI_API_MANIFESTS_ATOMIC=true",
		"OCI_API_MANIFESTS_DELETE=true",
		"OCI_API_TAGS_ATOMIC=true",
		"OCI_API_TAGS_DELETE=true",
		"OCI_API_TAGS_LIST=true",
		"OCI_API_REFERRER=true",
	)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	runErr := cmd.Run()

	raw, err := os.ReadFile(filepath.Join(results, "junit.xml"))
	if err != nil {
		t.Fatalf("conformance suite wrote no junit.xml (%v): %v\n%s", runErr, err, out.String())
	}
	var j junit
	if err := xml.Unmarshal(raw, &j); err != nil {
		t.Fatalf("junit.xml: %v", err)
	}
	var tests, failures, errors, skipped int
	for _, s := range j.Suites {
		tests += s.Tests
		failures += s.Failures
		errors += s.Errors
		skipped += s.Skipped
		for _, tc := range s.Testcases {
			base := tc.Name[strings.LastIndex(tc.Name, "/")+1:]
			switch {
			case tc.Failure != nil:
				t.Errorf("FAIL %s: %s %s", tc.Name, tc.Failure.Message, strings.TrimSpace(tc.Failure.Text))
			case tc.Error != nil:
				t.Errorf("ERROR %s: %s %s", tc.Name, tc.Error.Message, strings.TrimSpace(tc.Error.Text))
			case (tc.Skipped != nil || tc.Status == "skipped") && !allowedSkips[base]:
				t.Errorf("SKIP %s (not an allowed skip)", tc.Name)
			}
		}
	}
	t.Logf("OCI conformance: %d checks, %d failures, %d errors, %d skipped", tests, failures, errors, skipped)
	if tests < 500 {
		t.Errorf("only %d checks ran; the suite has over 800", tests)
	}
	if runErr != nil || t.Failed() {
		t.Errorf("conformance suite: %v\n%s", runErr, out.String())
	}
}
