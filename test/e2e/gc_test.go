//go:build e2e

package e2e

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/internal/testutil"
)

// Garbage collection on the real cluster, with a client pushing all the
// while: the run must take every replica read-only (the pusher's writes are
// refused meanwhile), free the garbage, give writes back, and lose no push
// that was acknowledged.
var _ = Describe("Garbage collection under load", Ordered, func() {
	BeforeAll(func() { installWithKustomize() })

	It("collects a one-replica Registry created with kubectl create -f", func() {
		s := newGCScenario(1, corev1.ReadWriteOnce, nil, false)
		s.createGarbage()
		p := s.startPusher()
		p.waitAcked(3)

		gcYAML := fmt.Sprintf(`apiVersion: berth.dev/v1alpha1
kind: GarbageCollection
metadata: {name: by-hand, namespace: %s}
spec: {registryName: %s, deleteUntagged: true, gracePeriod: 0s, timeout: 10m}
`, s.ns, s.reg)
		runWithInput(gcYAML, kubectl, "create", "-f", "-")
		s.finish(p, "by-hand")
	})

	It("collects a two-replica Registry on a ReadWriteMany volume with mutual TLS and htpasswd, run from its CronJob", func() {
		s := newGCScenario(2, corev1.ReadWriteMany, &berthv1alpha1.GarbageCollectionPolicy{
			Schedule: "0 0 1 1 *", DeleteUntagged: true, GracePeriod: &berthv1alpha1.Duration{},
			Timeout: &berthv1alpha1.Duration{Duration: 10 * time.Minute},
		}, true)
		Eventually(func() error {
			return k8sClient.Get(suiteCtx, types.NamespacedName{Namespace: s.ns, Name: s.reg + "-gc"}, &batchv1.CronJob{})
		}).WithTimeout(readyTimeout).WithPolling(poll).Should(Succeed(), "the schedule's CronJob")
		s.createGarbage()
		p := s.startPusher()
		p.waitAcked(3)

		run(kubectl, "-n", s.ns, "create", "job", "--from=cronjob/"+s.reg+"-gc", "on-demand")
		s.finish(p, "on-demand")
	})
})

// gcScenario is one namespace with one Registry reached through its
// NodePort.
type gcScenario struct {
	ns, reg  string
	replicas int
	host     string
	opts     []remote.Option
	// scheme, client, username and password reach the registry with plain
	// HTTP requests.
	scheme             string
	client             *http.Client
	username, password string
	// garbage are the images made garbage before the run (tags deleted,
	// or pushed untagged), to push again after it.
	garbage []v1.Image
}

// newGCScenario creates the namespace and the Registry. secure serves it
// over TLS requiring client certificates from a test CA, with an htpasswd
// user: the operator must verify its replicas whatever the registry port
// asks of clients.
func newGCScenario(replicas int32, mode corev1.PersistentVolumeAccessMode, policy *berthv1alpha1.GarbageCollectionPolicy, secure bool) *gcScenario {
	GinkgoHelper()
	s := &gcScenario{ns: createNamespace("berth-e2e-gc-"), reg: "gc", replicas: int(replicas), scheme: "http"}
	size := resource.MustParse("1Gi")
	reg := &berthv1alpha1.Registry{
		ObjectMeta: metav1.ObjectMeta{Name: s.reg, Namespace: s.ns},
		Spec: berthv1alpha1.RegistrySpec{
			Replicas: ptr.To(replicas),
			Storage: berthv1alpha1.RegistryStorage{
				Filesystem: &berthv1alpha1.FilesystemStorage{Size: &size, AccessModes: []corev1.PersistentVolumeAccessMode{mode}},
				Delete:     &berthv1alpha1.StorageDelete{Enabled: true},
			},
			Service:           berthv1alpha1.RegistryService{Type: corev1.ServiceTypeNodePort},
			GarbageCollection: policy,
		},
	}
	nodeIP := nodeInternalIP()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	var auth []remote.Option
	if secure {
		ca := testutil.NewCA(GinkgoT(), "berth e2e CA")
		crt, key := ca.IssueFor(GinkgoT(), s.reg, []string{s.reg + "." + s.ns + ".svc", s.reg}, []net.IP{nodeIP})
		clientCert := ca.Certificate(GinkgoT(), "e2e-pusher")
		password := "gc-" + rand.String(12)
		for _, sec := range []*corev1.Secret{
			{ObjectMeta: metav1.ObjectMeta{Name: "gc-tls"}, Type: corev1.SecretTypeTLS,
				Data: map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key}},
			{ObjectMeta: metav1.ObjectMeta{Name: "gc-client-ca"}, Data: map[string][]byte{"ca.crt": ca.CertPEM()}},
			{ObjectMeta: metav1.ObjectMeta{Name: "alice-password"}, StringData: map[string]string{"password": password}},
		} {
			sec.Namespace = s.ns
			Expect(k8sClient.Create(suiteCtx, sec)).To(Succeed())
		}
		reg.Spec.TLS = &berthv1alpha1.RegistryTLS{SecretName: "gc-tls",
			ClientCASecretRef: &berthv1alpha1.SecretKeyRef{Name: "gc-client-ca", Key: "ca.crt"}, ClientAuth: "require-and-verify-client-cert"}
		reg.Spec.Auth = &berthv1alpha1.RegistryAuth{Htpasswd: &berthv1alpha1.HtpasswdAuth{Users: []berthv1alpha1.HtpasswdUser{
			{Username: "alice", PasswordSecretRef: berthv1alpha1.SecretKeyRef{Name: "alice-password", Key: "password"}}}}}
		tr.TLSClientConfig = &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{clientCert}, MinVersion: tls.VersionTLS12}
		auth = []remote.Option{remote.WithAuth(&authn.Basic{Username: "alice", Password: password})}
		s.scheme, s.username, s.password = "https", "alice", password
	}
	By(fmt.Sprintf("creating a Registry with %d replicas on a %s volume (TLS with client certificates and htpasswd: %v)", replicas, mode, secure))
	Expect(k8sClient.Create(suiteCtx, reg)).To(Succeed())
	key := types.NamespacedName{Namespace: s.ns, Name: s.reg}
	Eventually(func(g Gomega) { registryReady(g, key) }).WithTimeout(readyTimeout).WithPolling(poll).Should(Succeed())

	svc := &corev1.Service{}
	Expect(k8sClient.Get(suiteCtx, key, svc)).To(Succeed())
	s.host = nodeIP.String() + ":" + strconv.Itoa(int(svc.Spec.Ports[0].NodePort))
	s.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	s.opts = append([]remote.Option{remote.WithTransport(tr), remote.WithContext(suiteCtx)}, auth...)
	return s
}

func (s *gcScenario) ref(repo, tagOrDigest string) name.Reference {
	GinkgoHelper()
	sep := ":"
	if strings.HasPrefix(tagOrDigest, "sha256:") {
		sep = "@"
	}
	var opts []name.Option
	if s.scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(s.host+"/"+repo+sep+tagOrDigest, opts...)
	Expect(err).NotTo(HaveOccurred())
	return ref
}

// createGarbage pushes images and makes them garbage: three whose
// manifests are deleted, two pushed by digest only (untagged).
func (s *gcScenario) createGarbage() {
	GinkgoHelper()
	By("creating garbage: deleted manifests and untagged images")
	for i := range 5 {
		img, err := random.Image(256<<10, 2)
		Expect(err).NotTo(HaveOccurred())
		d, err := img.Digest()
		Expect(err).NotTo(HaveOccurred())
		if i < 3 {
			tag := s.ref("garbage/deleted", "t"+strconv.Itoa(i))
			Expect(remote.Write(tag, img, s.opts...)).To(Succeed())
			Expect(remote.Delete(s.ref("garbage/deleted", d.String()), s.opts...)).To(Succeed())
		} else {
			Expect(remote.Write(s.ref("garbage/untagged", d.String()), img, s.opts...)).To(Succeed())
		}
		s.garbage = append(s.garbage, img)
	}
}

// pusher pushes new images in a loop and keeps count.
type pusher struct {
	s    *gcScenario
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	acked    map[string]v1.Image // tag -> image, acknowledged pushes
	ackedAt  []time.Time
	refused  int     // pushes refused with 405 (read-only)
	failures []error // other failed attempts (retried)
}

const (
	pusherMaxAttempts = 600
	pusherMaxTime     = 6 * time.Minute
)

func (s *gcScenario) startPusher() *pusher {
	p := &pusher{s: s, stop: make(chan struct{}), done: make(chan struct{}), acked: map[string]v1.Image{}}
	go func() {
		defer GinkgoRecover()
		defer close(p.done)
		deadline := time.Now().Add(pusherMaxTime)
		var img v1.Image
		n := 0
		for attempt := 0; attempt < pusherMaxAttempts && time.Now().Before(deadline); attempt++ {
			select {
			case <-p.stop:
				return
			default:
			}
			if img == nil {
				var err error
				img, err = random.Image(64<<10, 2)
				Expect(err).NotTo(HaveOccurred())
			}
			tag := "p" + strconv.Itoa(n)
			ref := s.ref("load/pushed", tag)
			err := remote.Write(ref, img, s.opts...)
			p.mu.Lock()
			var terr *transport.Error
			switch {
			case err == nil:
				p.acked[tag] = img
				p.ackedAt = append(p.ackedAt, time.Now())
				img, n = nil, n+1
			case errors.As(err, &terr) && terr.StatusCode == http.StatusMethodNotAllowed:
				p.refused++
			default:
				p.failures = append(p.failures, err)
			}
			p.mu.Unlock()
			if err != nil {
				time.Sleep(100 * time.Millisecond) //nolint:forbidigo // a client's retry delay, not a wait for a condition
			}
		}
	}()
	DeferCleanup(func() { p.Stop() })
	return p
}

// Stop stops the pusher and waits for it.
func (p *pusher) Stop() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// waitAcked waits until n pushes were acknowledged (in all).
func (p *pusher) waitAcked(n int) {
	GinkgoHelper()
	Eventually(func() int { p.mu.Lock(); defer p.mu.Unlock(); return len(p.acked) }).
		WithTimeout(2 * time.Minute).WithPolling(100 * time.Millisecond).Should(BeNumerically(">=", n))
}

// ackedAfter counts the pushes acknowledged after t.
func (p *pusher) ackedAfter(t time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, at := range p.ackedAt {
		if at.After(t) {
			n++
		}
	}
	return n
}

// finish waits for run name to succeed while the pusher pushes, then checks
// what the run promised.
func (s *gcScenario) finish(p *pusher, runName string) {
	GinkgoHelper()
	key := types.NamespacedName{Namespace: s.ns, Name: runName}
	gc := &berthv1alpha1.GarbageCollection{}
	By("waiting for GarbageCollection " + runName + " to succeed while the pusher pushes")
	Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(suiteCtx, key, gc)).To(Succeed())
		g.Expect(gc.Status.Phase).NotTo(Equal(berthv1alpha1.GCFailed), "run failed: %s: %s", gc.Status.Reason, gc.Status.Message)
		g.Expect(gc.Status.Phase).To(Equal(berthv1alpha1.GCSucceeded))
	}).WithTimeout(5 * time.Minute).WithPolling(poll).Should(Succeed())

	By("pushing again once the run is over")
	done := gc.Status.CompletionTime.Time
	Eventually(func() int { return p.ackedAfter(done) }).WithTimeout(time.Minute).WithPolling(100*time.Millisecond).
		Should(BeNumerically(">=", 3), "pushes after the run")
	p.Stop()

	sum := gc.Status.Summary
	o := gc.Status.WriteOutage
	Expect(sum).NotTo(BeNil())
	Expect(o).NotTo(BeNil())
	Expect(o.Start).NotTo(BeNil())
	Expect(o.End).NotTo(BeNil())
	outage := o.End.Sub(o.Start.Time)
	collector, err := time.ParseDuration(sum.Duration)
	Expect(err).NotTo(HaveOccurred())
	p.mu.Lock()
	refused, acked, failures := p.refused, len(p.acked), p.failures
	p.mu.Unlock()
	report := fmt.Sprintf("GC %s on %d replica(s): freed %s (%d blobs, %d manifests), collector %s, write outage %s (%s .. %s), run %s; "+
		"pusher: %d acknowledged, %d refused with 405 while read-only, %d other failed attempts (retried)",
		runName, s.replicas, sum.Freed, sum.BlobsDeleted, sum.ManifestsDeleted, sum.Duration, o.Duration,
		o.Start.UTC().Format("15:04:05.000"), o.End.UTC().Format("15:04:05.000"), gc.Status.Duration, acked, refused, len(failures))
	AddReportEntry("garbage collection", report)
	fmt.Fprintln(GinkgoWriter, report)
	for _, f := range failures {
		fmt.Fprintln(GinkgoWriter, "  other failure:", f)
	}
	fmt.Fprintln(GinkgoWriter, output(kubectl, "-n", s.ns, "get", "garbagecollections,registries"))

	Expect(sum.BytesFreed).To(BeNumerically(">", 0), "bytes freed")
	Expect(sum.ManifestsDeleted).To(BeNumerically(">=", 2), "the two untagged manifests")
	Expect(gc.Status.VerifiedReplicas).To(HaveLen(s.replicas), "every replica verified read-only")
	Expect(refused).To(BeNumerically(">", 0), "writes during the run were refused")
	Expect(outage).To(BeNumerically("<=", collector+15*time.Second), "write outage %s vs collector %s", outage, collector)

	By("pulling every acknowledged push byte for byte")
	p.mu.Lock()
	pushed := p.acked
	p.mu.Unlock()
	for tag, img := range pushed {
		expectSameImage(img, s.ref("load/pushed", tag), s.opts...)
	}

	By("pushing a swept image again: its blobs are really uploaded again")
	img := s.garbage[0]
	layers, err := img.Layers()
	Expect(err).NotTo(HaveOccurred())
	for _, l := range layers {
		d, err := l.Digest()
		Expect(err).NotTo(HaveOccurred())
		req, err := http.NewRequest(http.MethodHead, s.scheme+"://"+s.host+"/v2/garbage/deleted/blobs/"+d.String(), nil)
		Expect(err).NotTo(HaveOccurred())
		if s.username != "" {
			req.SetBasicAuth(s.username, s.password)
		}
		resp, err := s.client.Do(req)
		Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusNotFound), "swept layer %s still answers", d)
	}
	again := s.ref("garbage/deleted", "again")
	Expect(remote.Write(again, img, s.opts...)).To(Succeed())
	expectSameImage(img, again, s.opts...)

	reg := &berthv1alpha1.Registry{}
	Expect(k8sClient.Get(suiteCtx, types.NamespacedName{Namespace: s.ns, Name: s.reg}, reg)).To(Succeed())
	Expect(reg.Status.LastGarbageCollection).NotTo(BeNil())
	Expect(reg.Status.LastGarbageCollection.Name).To(Equal(runName))
}
