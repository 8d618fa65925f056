package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/controllers"
	"github.com/berth-dev/berth/internal/testutil"
)

// The manager runs in a process of its own (this test binary started
// again with managerEnv set, see TestMain), so that its peak RSS is its
// own and not the load generator's. It is built from the controllers'
// public API exactly as main.go builds it.
const (
	managerEnv        = "BERTH_BENCH_MANAGER_KUBECONFIG"
	managerMetricsEnv = "BERTH_BENCH_MANAGER_METRICS_ADDR"
	benchNamespace    = "bench"
)

func benchScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(berthv1alpha1.AddToScheme(s))
	return s
}

// runManager is the manager process: main.go's manager, with its metrics
// on managerMetricsEnv, until SIGTERM.
func runManager() int {
	ctrl.SetLogger(zap.New())
	if err := os.Setenv("KUBECONFIG", os.Getenv(managerEnv)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// main.go's cache: no pods, and of the kinds it creates only its own.
	ours := labels.SelectorFromSet(labels.Set{"app.kubernetes.io/managed-by": "berth"})
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 benchScheme(),
		Metrics:                metricsserver.Options{BindAddress: os.Getenv(managerMetricsEnv)},
		HealthProbeBindAddress: "0",
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&batchv1.Job{}:           {Label: ours},
			&batchv1.CronJob{}:       {Label: ours},
			&corev1.ServiceAccount{}: {Label: ours},
			&rbacv1.Role{}:           {Label: ours},
			&rbacv1.RoleBinding{}:    {Label: ours},
		}},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	prober := &controllers.HTTPProber{Client: &http.Client{Timeout: 3 * time.Second}}
	if err := (&controllers.RegistryReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Prober: prober,
		RegistrydImage: "berth/registryd:bench", ManagerImage: "berth/manager:bench",
	}).SetupWithManager(mgr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := (&controllers.GarbageCollectionReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Prober: prober,
		Recorder: mgr.GetEventRecorderFor("garbagecollection-controller"), RegistrydImage: "berth/registryd:bench",
	}).SetupWithManager(mgr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// BenchmarkOperatorScale runs one manager against envtest (a real
// kube-apiserver and etcd; KUBEBUILDER_ASSETS or hack/setup-envtest.sh)
// and creates BERTH_BENCH_REGISTRIES (500) Registries like the sample
// (filesystem storage on a PVC, delete enabled, a GC schedule). It
// reports the time from the first create until every Registry has its
// children and a status for its generation (envtest runs no pods, so
// "ready" means reconciled, not serving), the manager's peak RSS, and the
// API writes of a no-op resync: a second manager started over the
// reconciled Registries reconciles every one of them and must write
// nothing.
func BenchmarkOperatorScale(b *testing.B) {
	n := envInt(b, "BERTH_BENCH_REGISTRIES", 500)
	assets := testutil.HackTool(b, "KUBEBUILDER_ASSETS", "setup-envtest.sh")
	for range b.N {
		runOperatorBench(b, n, assets)
	}
}

func runOperatorBench(b *testing.B, n int, assets string) {
	// envtest logs through controller-runtime's logger: this process has
	// nothing to say (the manager logs to its own file).
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(testutil.RepoRoot(b), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	// envtest's default Service range, a /24, holds 253 Services: each
	// Registry has one.
	env.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", "10.0.0.0/16")
	cfg, err := env.Start()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := env.Stop(); err != nil {
			b.Error(err)
		}
	})
	user, err := env.AddUser(envtest.User{Name: "berth-bench-manager", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	kubeconfigPath := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		b.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	c, err := client.New(cfg, client.Options{Scheme: benchScheme()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: benchNamespace}}); err != nil {
		b.Fatal(err)
	}

	// The managers' logs outlive the benchmark, beside its report.
	logDir := filepath.Join(testutil.RepoRoot(b), "bin", "bench")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		b.Fatal(err)
	}
	results.sampleLoad("operator benchmark start")
	first := startManager(b, kubeconfigPath, filepath.Join(logDir, "operator-manager-1.log"))
	start := time.Now()
	_, err = fanOut(n, 16, func(i int) error { return c.Create(ctx, sampleRegistry(i)) })
	if err != nil {
		b.Fatal(err)
	}
	created := time.Since(start)
	allReconciled, err := waitFor(ctx, 10*time.Minute, 500*time.Millisecond, func() (bool, error) {
		return allReconciledRegistries(ctx, c, n)
	})
	if err != nil {
		done, _ := countReconciled(ctx, c)
		st, _ := first.scrape()
		b.Fatalf("waiting for %d Registries to be reconciled: %v; %d were, after %d reconciles and %d API writes, queue depth %d\nmanager log: %s",
			n, err, done, st.reconciles, st.writes, st.depth, first.logPath)
	}
	toChildren := time.Since(start)
	if err := checkChildren(ctx, c, n); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d Registries created in %s, all reconciled after %s (%s)", n, created.Round(time.Millisecond), toChildren.Round(time.Millisecond), allReconciled)
	firstStats, err := first.settle(ctx, 0)
	if err != nil {
		b.Fatal(err)
	}
	firstRSS, firstCPU := first.stop(b)

	// A no-op resync: a new manager reconciles every Registry again.
	second := startManager(b, kubeconfigPath, filepath.Join(logDir, "operator-manager-2.log"))
	secondStats, err := second.settle(ctx, int64(n))
	if err != nil {
		b.Fatal(err)
	}
	secondRSS, secondCPU := second.stop(b)
	results.sampleLoad("operator benchmark end")

	mib := func(kib int64) float64 { return float64(kib) / 1024 }
	results.addRow(single(fmt.Sprintf("operator: %d Registries created to all reconciled, envtest", n), "s",
		[]float64{toChildren.Seconds()}, false, 120, "≤ 120 s"))
	results.addRow(single("operator: manager peak RSS", "MiB", []float64{mib(max(firstRSS, secondRSS))}, false, 200, "≤ 200 MiB"))
	results.addRow(single(fmt.Sprintf("operator: API writes of a no-op resync of %d Registries", n), "writes",
		[]float64{float64(secondStats.writes)}, false, 0, "0"))
	results.addNote("operator: the first manager made %d API writes and %d Registry reconciles to create %d Registries' children (%.1f CPU s, peak RSS %.0f MiB); the resyncing manager made %d reconciles (%.1f CPU s, peak RSS %.0f MiB)",
		firstStats.writes, firstStats.reconciles, n, firstCPU.Seconds(), mib(firstRSS), secondStats.reconciles, secondCPU.Seconds(), mib(secondRSS))
	b.ReportMetric(toChildren.Seconds(), "s-to-reconciled")
	b.ReportMetric(mib(max(firstRSS, secondRSS)), "manager-maxrss-MiB")
	b.ReportMetric(float64(secondStats.writes), "resync-writes")
}

// sampleRegistry is config/samples/berth_v1alpha1_registry.yaml, named i.
func sampleRegistry(i int) *berthv1alpha1.Registry {
	one := int32(1)
	size := resource.MustParse("10Gi")
	return &berthv1alpha1.Registry{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("registry-%04d", i), Namespace: benchNamespace},
		Spec: berthv1alpha1.RegistrySpec{
			Replicas: &one,
			Storage: berthv1alpha1.RegistryStorage{
				Filesystem: &berthv1alpha1.FilesystemStorage{Size: &size, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}},
				Delete:     &berthv1alpha1.StorageDelete{Enabled: true},
			},
			GarbageCollection: &berthv1alpha1.GarbageCollectionPolicy{Schedule: "0 3 * * *", Timeout: &berthv1alpha1.Duration{Duration: time.Hour}},
		},
	}
}

// allReconciledRegistries reports whether n Registries exist and each has
// a status for its current generation that is not Degraded.
func allReconciledRegistries(ctx context.Context, c client.Client, n int) (bool, error) {
	var list berthv1alpha1.RegistryList
	if err := c.List(ctx, &list, client.InNamespace(benchNamespace)); err != nil {
		return false, err
	}
	if len(list.Items) != n {
		return false, nil
	}
	for _, r := range list.Items {
		if r.Status.ObservedGeneration != r.Generation {
			return false, nil
		}
		if d := meta.FindStatusCondition(r.Status.Conditions, berthv1alpha1.ConditionDegraded); d != nil && d.Status == metav1.ConditionTrue {
			return false, fmt.Errorf("Registry %s is Degraded: %s", r.Name, d.Message)
		}
	}
	return true, nil
}

// countReconciled counts the Registries with a status for their current
// generation.
func countReconciled(ctx context.Context, c client.Client) (int, error) {
	var list berthv1alpha1.RegistryList
	if err := c.List(ctx, &list, client.InNamespace(benchNamespace)); err != nil {
		return 0, err
	}
	done := 0
	for _, r := range list.Items {
		if r.Status.ObservedGeneration == r.Generation {
			done++
		}
	}
	return done, nil
}

// checkChildren checks that each of the n Registries controls a
// ConfigMap, a Secret, a PVC, a Deployment and a Service.
func checkChildren(ctx context.Context, c client.Client, n int) error {
	lists := map[string]client.ObjectList{
		"ConfigMap": &corev1.ConfigMapList{}, "Secret": &corev1.SecretList{},
		"PersistentVolumeClaim": &corev1.PersistentVolumeClaimList{},
		"Deployment":            &appsv1.DeploymentList{}, "Service": &corev1.ServiceList{},
	}
	for kind, list := range lists {
		if err := c.List(ctx, list, client.InNamespace(benchNamespace)); err != nil {
			return err
		}
		owners := map[string]bool{}
		items, err := meta.ExtractList(list)
		if err != nil {
			return err
		}
		for _, it := range items {
			o := it.(client.Object)
			if ref := metav1.GetControllerOf(o); ref != nil && ref.Kind == "Registry" {
				owners[ref.Name] = true
			}
		}
		if len(owners) != n {
			return fmt.Errorf("%d of %d Registries control a %s", len(owners), n, kind)
		}
	}
	return nil
}

// managerProc is a running manager process.
type managerProc struct {
	cmd     *exec.Cmd
	metrics string
	logPath string
	done    chan struct{}
}

func startManager(b *testing.B, kubeconfig, logPath string) *managerProc {
	b.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	m := &managerProc{metrics: testutil.FreeAddr(b), logPath: logPath, done: make(chan struct{})}
	m.cmd = exec.Command(os.Args[0])
	m.cmd.Env = append(os.Environ(), managerEnv+"="+kubeconfig, managerMetricsEnv+"="+m.metrics)
	m.cmd.Stdout, m.cmd.Stderr = logFile, logFile
	if err := m.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() {
		_ = m.cmd.Wait()
		logFile.Close()
		close(m.done)
	}()
	b.Cleanup(func() {
		select {
		case <-m.done:
		default:
			_ = m.cmd.Process.Kill()
			<-m.done
		}
	})
	if _, err := waitFor(context.Background(), time.Minute, 100*time.Millisecond, func() (bool, error) {
		select {
		case <-m.done:
			return false, fmt.Errorf("manager exited: see %s", logPath)
		default:
		}
		_, err := m.scrape()
		return err == nil, nil
	}); err != nil {
		b.Fatalf("manager metrics on %s: %v", m.metrics, err)
	}
	return m
}

// stop ends the manager with SIGTERM and returns its peak RSS (KiB) and
// CPU time. The peak is the manager's VmHWM, read before it is stopped:
// the rusage of a child started by os/exec counts this process's own RSS
// (the child is started with vfork).
func (m *managerProc) stop(b *testing.B) (int64, time.Duration) {
	b.Helper()
	hwm, err := vmHWM(m.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
		b.Fatalf("manager did not stop on SIGTERM; log: %s", m.logPath)
	}
	ru, ok := m.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		b.Fatal("no rusage for the manager")
	}
	return hwm, time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// vmHWM is the peak RSS of process pid's address space, in KiB.
func vmHWM(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(raw)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmHWM", pid)
}

// managerStats is what a manager's metrics say it did.
type managerStats struct {
	writes     int64 // POST, PUT, PATCH and DELETE requests to the API server
	reconciles int64 // Registry reconciles, whatever their result
	depth      int64 // Registry work queue depth
}

// scrape reads the manager's metrics endpoint.
func (m *managerProc) scrape() (managerStats, error) {
	resp, err := http.Get("http://" + m.metrics + "/metrics")
	if err != nil {
		return managerStats{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return managerStats{}, fmt.Errorf("metrics: %s", resp.Status)
	}
	var st managerStats
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		series := line[:i]
		switch {
		case strings.HasPrefix(series, "rest_client_requests_total{"):
			for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
				if strings.Contains(series, `method="`+m+`"`) {
					st.writes += int64(v)
				}
			}
		case strings.HasPrefix(series, "controller_runtime_reconcile_total{") && strings.Contains(series, `controller="registry"`):
			st.reconciles += int64(v)
		case strings.HasPrefix(series, "workqueue_depth{") && strings.Contains(series, `name="registry"`):
			st.depth += int64(v)
		}
	}
	return st, sc.Err()
}

// settle waits until the manager has reconciled at least reconciles
// Registries, its queue is empty and its counters have not moved for
// three seconds, and returns its stats then.
func (m *managerProc) settle(ctx context.Context, reconciles int64) (managerStats, error) {
	var last managerStats
	stableSince := time.Now()
	_, err := waitFor(ctx, 10*time.Minute, 500*time.Millisecond, func() (bool, error) {
		st, err := m.scrape()
		if err != nil {
			return false, err
		}
		if st != last {
			last, stableSince = st, time.Now()
			return false, nil
		}
		return st.reconciles >= reconciles && st.depth == 0 && time.Since(stableSince) >= 3*time.Second, nil
	})
	return last, err
}

// waitFor polls cond every interval (testutil.Poll) until it holds,
// fails, ctx ends or timeout passes, and returns how long it took.
func waitFor(ctx context.Context, timeout, interval time.Duration, cond func() (bool, error)) (time.Duration, error) {
	start := time.Now()
	err := testutil.Poll(func() error {
		if err := ctx.Err(); err != nil {
			return testutil.Permanent(err)
		}
		ok, err := cond()
		switch {
		case err != nil:
			return testutil.Permanent(err)
		case !ok:
			return errNotDone
		}
		return nil
	}, testutil.Within(timeout), testutil.Every(interval))
	return time.Since(start), err
}

var errNotDone = errors.New("not done")
