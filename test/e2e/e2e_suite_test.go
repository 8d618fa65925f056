//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
)

// Bounds of the waits. The slowest thing waited on is the kubelet's sync
// of a changed Secret into a running pod's volume (up to its sync period,
// a minute, plus the cache TTL).
const (
	installTimeout = 3 * time.Minute
	readyTimeout   = 3 * time.Minute
	secretSyncWait = 3 * time.Minute
	poll           = time.Second
)

var (
	root       string // the repository
	kubectl    string
	managerImg = envOr("E2E_IMG", "berth/manager:e2e")
	registryd  = envOr("E2E_REGISTRYD_IMG", "berth/registryd:e2e")
	k8sClient  client.Client
	suiteCtx   = context.Background()
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Berth end to end")
}

var _ = BeforeSuite(func() {
	Expect(os.Getenv("KUBECONFIG")).NotTo(BeEmpty(), "set KUBECONFIG to the cluster to test (make cluster-up prints it)")
	var err error
	root, err = filepath.Abs("../..")
	Expect(err).NotTo(HaveOccurred())
	k8sVersion, err := os.ReadFile(filepath.Join(root, "hack", "k8s-version"))
	Expect(err).NotTo(HaveOccurred())
	kubectl = envOr("KUBECTL", filepath.Join(root, "bin", "k8s", envOr("K8S_VERSION", strings.TrimSpace(string(k8sVersion))), "kubectl"))
	if _, err := os.Stat(kubectl); err != nil {
		kubectl = "kubectl"
	}

	cfg, err := config.GetConfig()
	Expect(err).NotTo(HaveOccurred())
	scheme := runtime.NewScheme()
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(berthv1alpha1.AddToScheme(scheme)).To(Succeed())
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	if os.Getenv("E2E_SKIP_LOAD_IMAGES") == "" {
		By(fmt.Sprintf("building and importing the images (%s, %s)", managerImg, registryd))
		run("make", "-C", root, "load-images", "IMG="+managerImg, "REGISTRYD_IMG="+registryd)
	}
})

// installWithKustomize installs Berth with `make deploy`, waits for the
// manager, and removes it again with `make undeploy` when the calling
// container's specs are done (call it from a BeforeAll). Each install path
// (this one, Helm in helm_test.go) installs and removes its own copy, so
// they never overlap, whichever order Ginkgo runs the containers in.
func installWithKustomize() {
	GinkgoHelper()
	By(fmt.Sprintf("installing Berth with kustomize (%s, %s)", managerImg, registryd))
	DeferCleanup(func() {
		By("uninstalling Berth (kustomize)")
		run("make", "-C", root, "undeploy", "IMG="+managerImg, "REGISTRYD_IMG="+registryd)
	})
	run("make", "-C", root, "deploy", "IMG="+managerImg, "REGISTRYD_IMG="+registryd)
	run(kubectl, "-n", "berth-system", "wait", "--for=condition=Available", "deployment", "--all",
		"--timeout="+installTimeout.String())
}

// run runs a command, its output to the Ginkgo log, and fails the spec if
// it fails.
func run(name string, args ...string) {
	GinkgoHelper()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = GinkgoWriter, GinkgoWriter
	fmt.Fprintf(GinkgoWriter, "+ %s %v\n", name, args)
	Expect(cmd.Run()).To(Succeed(), "%s %v", name, args)
}

// output runs a command and returns its standard output.
// runWithInput runs a command with stdin.
func runWithInput(stdin, name string, args ...string) {
	GinkgoHelper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = GinkgoWriter, GinkgoWriter
	fmt.Fprintf(GinkgoWriter, "+ %s %v <<%q\n", name, args, stdin)
	Expect(cmd.Run()).To(Succeed(), "%s %v", name, args)
}

func output(name string, args ...string) string {
	GinkgoHelper()
	cmd := exec.Command(name, args...)
	cmd.Stderr = GinkgoWriter
	out, err := cmd.Output()
	Expect(err).NotTo(HaveOccurred(), "%s %v", name, args)
	return string(out)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
