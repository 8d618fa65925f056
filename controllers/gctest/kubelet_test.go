package gctest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/controllers"
	"github.com/berth-dev/berth/controllers/builders"
	"github.com/berth-dev/berth/registryd/configuration"
	"github.com/berth-dev/berth/registryd/server"
)

// kubelet stands in for the node agent envtest does not have (a fake, the
// only one here: everything it runs is real). For each pod it "starts" it
// creates a Pod object with the Registry's labels and a running registryd
// container, and runs a real registryd server in this process on
// loopback, with the pod's own config directory. Like the kubelet, it
// writes the ConfigMap's files into that directory when the pod starts and
// again whenever the pod's berth.dev/sync annotation changes (the nudge
// the operator uses to make the real kubelet sync a pod's volumes at
// once); Pause stops those syncs, as a slow kubelet would.
//
// What it projects: hold.json as is, and from config.yml the read-only
// flag (the pod serves inmemory storage on loopback ports, whatever the
// rendered storage and addresses are).
type kubelet struct {
	c   client.Client
	ns  string
	reg string

	mu     sync.Mutex
	pods   map[string]*fakePod
	paused bool
}

type fakePod struct {
	name   string
	dir    string
	srv    *server.Server
	cancel context.CancelFunc
	done   chan struct{}
	synced string // the sync annotation last acted on
	api    string // host:port of the registry API
	debug  string // host:port of the debug server
}

func newKubelet(c client.Client, ns, registry string) *kubelet {
	return &kubelet{c: c, ns: ns, reg: registry, pods: map[string]*fakePod{}}
}

// Address is the controllers.HTTPProber address function for our pods.
func (k *kubelet) Address(pod *corev1.Pod) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if p, ok := k.pods[pod.Name]; ok {
		return p.debug
	}
	return ""
}

// Pause stops delivering ConfigMap changes; Resume delivers them again.
func (k *kubelet) Pause() { k.mu.Lock(); k.paused = true; k.mu.Unlock() }
func (k *kubelet) Resume() {
	k.mu.Lock()
	k.paused = false
	k.mu.Unlock()
}

// Run delivers ConfigMap changes to nudged pods until ctx ends.
func (k *kubelet) Run(ctx context.Context) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			k.syncAll(ctx)
		}
	}
}

func (k *kubelet) syncAll(ctx context.Context) {
	k.mu.Lock()
	paused := k.paused
	pods := make([]*fakePod, 0, len(k.pods))
	for _, p := range k.pods {
		pods = append(pods, p)
	}
	k.mu.Unlock()
	if paused {
		return
	}
	for _, p := range pods {
		pod := &corev1.Pod{}
		if err := k.c.Get(ctx, client.ObjectKey{Namespace: k.ns, Name: p.name}, pod); err != nil {
			continue
		}
		if token := pod.Annotations[controllers.SyncAnnotation]; token != "" && token != p.synced {
			if err := k.project(ctx, p.dir); err == nil {
				k.mu.Lock()
				p.synced = token
				k.mu.Unlock()
			}
		}
	}
}

// project writes the ConfigMap's files into dir the way the kubelet does:
// a new timestamped directory, then an atomic swap of the ..data link.
func (k *kubelet) project(ctx context.Context, dir string) error {
	return k.projectFiles(ctx, dir, false)
}

// projectFiles is project; stale leaves the hold out, as a copy of the
// ConfigMap from before the hold would.
func (k *kubelet) projectFiles(ctx context.Context, dir string, stale bool) error {
	cm := &corev1.ConfigMap{}
	if err := k.c.Get(ctx, client.ObjectKey{Namespace: k.ns, Name: k.reg + "-config"}, cm); err != nil {
		return err
	}
	readOnly := false
	if data, ok := cm.Data[builders.ConfigFile]; ok {
		cfg, err := configuration.ParseWithEnv(bytes.NewReader([]byte(data)), []string{"REGISTRY_HTTP_SECRET=x"})
		if err != nil {
			return err
		}
		readOnly = cfg.Storage.Maintenance.ReadOnly.Enabled
	}
	files := map[string]string{builders.ConfigFile: podConfig(readOnly)}
	if hold, ok := cm.Data[builders.HoldFile]; ok && !stale {
		files[builders.HoldFile] = hold
	}
	ts, err := os.MkdirTemp(dir, "..data-")
	if err != nil {
		return err
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(ts, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		return err
	}
	for _, name := range []string{builders.ConfigFile, builders.HoldFile} {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); errors.Is(err, os.ErrNotExist) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				return err
			}
		}
	}
	return nil
}

// podConfig is the pod's config.yml: inmemory storage on loopback.
func podConfig(readOnly bool) string {
	return fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  inmemory: {}
  maintenance:
    uploadpurging:
      enabled: false
    readonly:
      enabled: %v
http:
  addr: 127.0.0.1:0
  debug:
    addr: 127.0.0.1:0
`, readOnly)
}

// Start "starts" a registryd pod named name: files from the ConfigMap as
// it is now, a running server, a Pod object that reports a running
// registryd container. It returns once the pod serves.
func (k *kubelet) Start(ctx context.Context, name string) { k.start(ctx, name, false) }

// StartStale starts pod name from the ConfigMap as it was before any hold
// (a pod whose volume was set up from an old copy).
func (k *kubelet) StartStale(ctx context.Context, name string) { k.start(ctx, name, true) }

func (k *kubelet) start(ctx context.Context, name string, stale bool) {
	dir, err := os.MkdirTemp("", "kubelet-"+name+"-")
	Expect(err).NotTo(HaveOccurred())
	Expect(k.projectFiles(ctx, dir, stale)).To(Succeed())

	cfgPath := filepath.Join(dir, builders.ConfigFile)
	data, err := os.ReadFile(cfgPath)
	Expect(err).NotTo(HaveOccurred())
	cfg, err := configuration.Parse(bytes.NewReader(data))
	Expect(err).NotTo(HaveOccurred())
	logger := slog.New(slog.DiscardHandler)
	srv, err := server.New(cfg, server.Options{Logger: logger, AccessLog: io.Discard, ConfigPath: cfgPath,
		HoldFile: filepath.Join(dir, builders.HoldFile)})
	Expect(err).NotTo(HaveOccurred())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	sctx, cancel := context.WithCancel(context.Background())
	p := &fakePod{name: name, dir: dir, srv: srv, cancel: cancel, done: make(chan struct{}), api: l.Addr().String()}
	go func() {
		defer close(p.done)
		_ = srv.Serve(sctx, l)
	}()
	Eventually(srv.DebugAddr).ShouldNot(BeEmpty())
	p.debug = srv.DebugAddr()

	labels := map[string]string{"app.kubernetes.io/name": "registryd", "app.kubernetes.io/instance": k.reg}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: k.ns, Labels: labels},
		Spec:       corev1.PodSpec{NodeName: "node-" + name, Containers: []corev1.Container{{Name: builders.ContainerName, Image: "registryd:test"}}},
	}
	Expect(k.c.Create(ctx, pod)).To(Succeed())
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "127.0.0.1", ContainerStatuses: []corev1.ContainerStatus{{
		Name: builders.ContainerName, Ready: true, Image: "registryd:test", ImageID: "registryd:test",
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
	}}}
	Expect(k.c.Status().Update(ctx, pod)).To(Succeed())

	k.mu.Lock()
	k.pods[name] = p
	k.mu.Unlock()
}

// Stop ends pod name: its server and its Pod object.
func (k *kubelet) Stop(ctx context.Context, name string) {
	k.mu.Lock()
	p := k.pods[name]
	delete(k.pods, name)
	k.mu.Unlock()
	if p == nil {
		return
	}
	p.cancel()
	<-p.done
	_ = os.RemoveAll(p.dir)
	err := k.c.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: k.ns}}, client.GracePeriodSeconds(0))
	if err != nil && !apierrors.IsNotFound(err) {
		Expect(err).NotTo(HaveOccurred())
	}
}

// StopAll ends every pod.
func (k *kubelet) StopAll(ctx context.Context) {
	k.mu.Lock()
	names := make([]string, 0, len(k.pods))
	for n := range k.pods {
		names = append(names, n)
	}
	k.mu.Unlock()
	for _, n := range names {
		k.Stop(ctx, n)
	}
}

// Status is what pod name's registryd reports.
func (k *kubelet) Status(name string) server.Status {
	k.mu.Lock()
	p := k.pods[name]
	k.mu.Unlock()
	return p.srv.Status()
}

// Push tries a write (the start of a blob upload) on pod name and returns
// the HTTP status: 202 when writes are accepted, 405 when refused.
func (k *kubelet) Push(name string) int {
	k.mu.Lock()
	p := k.pods[name]
	k.mu.Unlock()
	resp, err := http.Post("http://"+p.api+"/v2/gc-test/blobs/uploads/", "application/octet-stream", nil)
	Expect(err).NotTo(HaveOccurred())
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// registryWithReplicas is a Registry on a filesystem volume every replica
// can mount (so the collector needs no node), with n replicas.
func registryWithReplicas(ns, name string, n int32) *berthv1alpha1.Registry {
	return &berthv1alpha1.Registry{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: berthv1alpha1.RegistrySpec{
			Replicas: &n,
			Storage: berthv1alpha1.RegistryStorage{Filesystem: &berthv1alpha1.FilesystemStorage{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			}},
		},
	}
}
