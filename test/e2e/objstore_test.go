//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/internal/testutil"
)

// Bounds of the load the rolling update runs under.
const (
	rollTimeout   = 5 * time.Minute
	maxLoadRounds = 5000
)

// Several registryd replicas on one bucket: the S3-compatible server
// (versitygw) runs on the machine, on the host end of the node's link,
// which the pods reach and so does the suite (it follows the blob
// redirects there).
var _ = Describe("A Registry with 3 replicas on an S3 bucket", Ordered, func() {
	const (
		regName = "shared"
		repo    = "e2e/shared"
	)
	var (
		ns     string
		s3     *testutil.S3Server
		bucket = "e2e-" + rand.String(8)
		host   string // NODE_IP:nodePort
		img    v1.Image
	)

	key := func(n string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: n} }
	ref := func(r string) name.Reference {
		GinkgoHelper()
		parsed, err := name.ParseReference(host+"/"+r, name.Insecure)
		Expect(err).NotTo(HaveOccurred())
		return parsed
	}

	// On a failure, what registryd said is the first thing to read.
	JustAfterEach(func() {
		if CurrentSpecReport().Failed() && ns != "" {
			cmd := exec.Command(kubectl, "-n", ns, "logs", "--prefix", "--tail=50", "-l", "app.kubernetes.io/instance="+regName)
			cmd.Stdout, cmd.Stderr = GinkgoWriter, GinkgoWriter
			_ = cmd.Run()
		}
	})

	BeforeAll(func() {
		installWithKustomize()

		nodeIP := nodeInternalIP()
		hostIP := localAddrTowards(nodeIP)
		By("starting the S3 server on " + hostIP.String() + ", the host end of the node's link")
		var err error
		s3, err = testutil.StartS3Server(testutil.HackTool(GinkgoT(), "VERSITYGW", "install-versitygw.sh"), net.JoinHostPort(hostIP.String(), "0"))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(s3.Stop)
		s3.CreateBucket(GinkgoT(), bucket)

		ns = createNamespace("berth-e2e-s3-")
		Expect(k8sClient.Create(suiteCtx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "s3-credentials", Namespace: ns},
			StringData: map[string]string{"accessKey": s3.AccessKey, "secretKey": s3.SecretKey},
		})).To(Succeed())

		reg := &berthv1alpha1.Registry{
			ObjectMeta: metav1.ObjectMeta{Name: regName, Namespace: ns},
			Spec: berthv1alpha1.RegistrySpec{
				Replicas: ptr.To[int32](3),
				Storage: berthv1alpha1.RegistryStorage{
					S3: &berthv1alpha1.S3Storage{
						Bucket: bucket, Region: s3.Region, RegionEndpoint: s3.Endpoint(),
						ForcePathStyle: true, Secure: ptr.To(false), RootDirectory: "/registry",
						AccessKeySecretRef: &berthv1alpha1.SecretKeyRef{Name: "s3-credentials", Key: "accessKey"},
						SecretKeySecretRef: &berthv1alpha1.SecretKeyRef{Name: "s3-credentials", Key: "secretKey"},
					},
					Delete: &berthv1alpha1.StorageDelete{Enabled: true},
				},
				Service: berthv1alpha1.RegistryService{Type: corev1.ServiceTypeNodePort},
			},
		}
		By("creating the Registry")
		Expect(k8sClient.Create(suiteCtx, reg)).To(Succeed())

		var err2 error
		img, err2 = random.Image(12<<20, 2) // a layer past the s3 driver's part size
		Expect(err2).NotTo(HaveOccurred())
	})

	It("becomes Ready with 3 replicas, a PodDisruptionBudget and no credential in its ConfigMap", func() {
		Eventually(func(g Gomega) {
			registryReady(g, key(regName))
			reg := &berthv1alpha1.Registry{}
			g.Expect(k8sClient.Get(suiteCtx, key(regName), reg)).To(Succeed())
			g.Expect(reg.Status.ReadyReplicas).To(BeEquivalentTo(3))
		}).WithTimeout(readyTimeout).WithPolling(poll).Should(Succeed())

		pdb := &policyv1.PodDisruptionBudget{}
		Expect(k8sClient.Get(suiteCtx, key(regName), pdb)).To(Succeed())
		Expect(pdb.Spec.MaxUnavailable.IntValue()).To(Equal(1))

		cm := &corev1.ConfigMap{}
		Expect(k8sClient.Get(suiteCtx, key(regName+"-config"), cm)).To(Succeed())
		Expect(cm.Data["config.yml"]).To(ContainSubstring("bucket: " + bucket))
		Expect(cm.Data["config.yml"]).NotTo(ContainSubstring(s3.SecretKey))
		Expect(cm.Data["config.yml"]).NotTo(ContainSubstring(s3.AccessKey))

		svc := &corev1.Service{}
		Expect(k8sClient.Get(suiteCtx, key(regName), svc)).To(Succeed())
		host = net.JoinHostPort(nodeInternalIP().String(), strconv.Itoa(int(svc.Spec.Ports[0].NodePort)))
	})

	It("pushes through the Service and pulls byte for byte, blobs through redirects to the bucket", func() {
		Expect(remote.Write(ref(repo+":v1"), img, remote.WithContext(suiteCtx))).To(Succeed())
		expectSameImage(img, ref(repo+":v1"), remote.WithContext(suiteCtx), remote.WithTransport(followRedirects()))

		layers, err := img.Layers()
		Expect(err).NotTo(HaveOccurred())
		d, err := layers[0].Digest()
		Expect(err).NotTo(HaveOccurred())
		noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noFollow.Get("http://" + host + "/v2/" + repo + "/blobs/" + d.String())
		Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusTemporaryRedirect))
		Expect(resp.Header.Get("Location")).To(HavePrefix(s3.Endpoint() + "/" + bucket + "/registry/docker/registry/v2/blobs/"))
	})

	It("completes an upload whose requests land on three different replicas", func() {
		pods := runningPods(ns, regName)
		Expect(pods).To(HaveLen(3))
		var addrs []string
		for _, p := range pods {
			addrs = append(addrs, portForward(ns, p.Name, 5000))
		}
		chunks := [][]byte{
			bytes.Repeat([]byte("a"), 6<<20+5), // past S3's smallest part
			bytes.Repeat([]byte("b"), 4321),
		}
		blob := bytes.Join(chunks, nil)
		digest := fmt.Sprintf("sha256:%x", sha256.Sum256(blob))

		By("POST on " + pods[0].Name)
		resp := do(http.MethodPost, "http://"+addrs[0]+"/v2/"+repo+"/blobs/uploads/", nil, nil)
		Expect(resp.StatusCode).To(Equal(http.StatusAccepted))
		path := pathOf(resp.Header.Get("Location"))
		offset := 0
		for i, c := range chunks {
			By(fmt.Sprintf("PATCH %d on %s", i, pods[i+1].Name))
			resp = do(http.MethodPatch, "http://"+addrs[i+1]+path, c, map[string]string{
				"Content-Type":  "application/octet-stream",
				"Content-Range": fmt.Sprintf("%d-%d", offset, offset+len(c)-1),
			})
			offset += len(c)
			Expect(resp.StatusCode).To(Equal(http.StatusAccepted))
			Expect(resp.Header.Get("Range")).To(Equal(fmt.Sprintf("0-%d", offset-1)))
			if loc := resp.Header.Get("Location"); loc != "" {
				path = pathOf(loc)
			}
		}
		By("PUT on " + pods[0].Name)
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		resp = do(http.MethodPut, "http://"+addrs[0]+path+sep+"digest="+digest, nil, nil)
		Expect(resp.StatusCode).To(Equal(http.StatusCreated))

		By("pulling it through the Service")
		client := &http.Client{Timeout: 30 * time.Second}
		got, err := client.Get("http://" + host + "/v2/" + repo + "/blobs/" + digest)
		Expect(err).NotTo(HaveOccurred())
		defer got.Body.Close()
		body, err := io.ReadAll(got.Body)
		Expect(err).NotTo(HaveOccurred())
		Expect(bytes.Equal(body, blob)).To(BeTrue(), "pulled %d bytes, pushed %d", len(body), len(blob))
	})

	It("rolls its pods while a client pulls in a loop and another pushes: no pull fails, every acknowledged push pulls", func() {
		before := map[types.UID]bool{}
		for _, p := range runningPods(ns, regName) {
			before[p.UID] = true
		}
		expected, err := img.Manifest()
		Expect(err).NotTo(HaveOccurred())

		var (
			stop               atomic.Bool
			wg                 sync.WaitGroup
			pulls, pullFails   atomic.Int64
			pushes, pushFails  atomic.Int64
			mu                 sync.Mutex
			pullErrs, pushErrs []string
			acked              = map[string]v1.Image{}
		)
		// No client-side retries: a request the rollout drops is a failure.
		strict := []remote.Option{remote.WithContext(suiteCtx), remote.WithRetryBackoff(remote.Backoff{Steps: 1}), remote.WithTransport(followRedirects())}
		wg.Go(func() {
			defer GinkgoRecover()
			for i := 0; i < maxLoadRounds && !stop.Load(); i++ {
				err := pullOnce(ref(repo+":v1"), expected, strict...)
				pulls.Add(1)
				if err != nil {
					pullFails.Add(1)
					mu.Lock()
					pullErrs = append(pullErrs, err.Error())
					mu.Unlock()
				}
			}
		})
		wg.Go(func() {
			defer GinkgoRecover()
			for i := 0; i < maxLoadRounds && !stop.Load(); i++ {
				small, err := random.Image(64<<10, 1)
				if err != nil {
					continue
				}
				tag := fmt.Sprintf("load-%d", i)
				err = remote.Write(ref(repo+":"+tag), small, strict...)
				pushes.Add(1)
				mu.Lock()
				if err != nil {
					pushFails.Add(1)
					pushErrs = append(pushErrs, err.Error())
				} else {
					acked[tag] = small
				}
				mu.Unlock()
			}
		})
		defer func() { stop.Store(true); wg.Wait() }()

		// Let the load start, then change the config: the pods roll.
		Eventually(func() int64 { return pulls.Load() }).WithTimeout(time.Minute).WithPolling(100 * time.Millisecond).Should(BeNumerically(">=", 3))
		// Turning redirects off is the change: the old pods redirect blob
		// downloads to the bucket, the new ones serve the bytes themselves,
		// so transfers through terminating pods are part of the load.
		By("turning blob redirects off: a new config, so every pod is replaced")
		reg := &berthv1alpha1.Registry{}
		Expect(k8sClient.Get(suiteCtx, key(regName), reg)).To(Succeed())
		patch := client.MergeFrom(reg.DeepCopy())
		reg.Spec.Storage.Redirect = &berthv1alpha1.StorageRedirect{Disable: true}
		Expect(k8sClient.Patch(suiteCtx, reg, patch)).To(Succeed())

		Eventually(func(g Gomega) {
			dep := &appsv1.Deployment{}
			g.Expect(k8sClient.Get(suiteCtx, key(regName), dep)).To(Succeed())
			g.Expect(dep.Status.ObservedGeneration).To(Equal(dep.Generation))
			g.Expect(dep.Status.UpdatedReplicas).To(BeEquivalentTo(3))
			g.Expect(dep.Status.AvailableReplicas).To(BeEquivalentTo(3))
			g.Expect(dep.Status.Replicas).To(BeEquivalentTo(3), "old pods still counted")
			all := &corev1.PodList{}
			g.Expect(k8sClient.List(suiteCtx, all, client.InNamespace(ns), client.MatchingLabels(dep.Spec.Selector.MatchLabels))).To(Succeed())
			for _, p := range all.Items {
				g.Expect(before).NotTo(HaveKey(p.UID), "pod %s of the old config still exists", p.Name)
			}
			registryReady(g, key(regName))
		}).WithTimeout(rollTimeout).WithPolling(poll).Should(Succeed())

		// Some more load on the new pods only, then stop.
		done := pulls.Load()
		Eventually(func() int64 { return pulls.Load() }).WithTimeout(time.Minute).WithPolling(100 * time.Millisecond).Should(BeNumerically(">=", done+3))
		stop.Store(true)
		wg.Wait()

		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(GinkgoWriter, "rolling update under load: %d pulls (%d failed), %d pushes (%d failed, %d acknowledged)\n",
			pulls.Load(), pullFails.Load(), pushes.Load(), pushFails.Load(), len(acked))
		AddReportEntry("rolling update load", fmt.Sprintf("%d pulls (%d failed), %d pushes (%d failed, %d acknowledged)",
			pulls.Load(), pullFails.Load(), pushes.Load(), pushFails.Load(), len(acked)))
		Expect(pullFails.Load()).To(BeZero(), "failed pulls: %v", pullErrs)
		Expect(len(acked)).To(BeNumerically(">", 0))
		if pushFails.Load() > 0 {
			fmt.Fprintf(GinkgoWriter, "failed pushes (not acknowledged, so allowed): %v\n", pushErrs)
		}
		By(fmt.Sprintf("pulling every one of the %d acknowledged pushes", len(acked)))
		for tag, small := range acked {
			expectSameImage(small, ref(repo+":"+tag), remote.WithContext(suiteCtx))
		}
		blobs, err := img.Layers()
		Expect(err).NotTo(HaveOccurred())
		d, err := blobs[0].Digest()
		Expect(err).NotTo(HaveOccurred())
		resp, err := (&http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).
			Head("http://" + host + "/v2/" + repo + "/blobs/" + d.String())
		Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusOK), "the new pods serve blobs themselves")
	})
})

// followRedirects is a transport that follows blob redirects itself, as
// Docker and containerd do: go-containerregistry's own client refuses a
// redirect from the registry's address to another private one (the S3
// server here), to guard against server-side request forgery.
func followRedirects() http.RoundTripper {
	return redirectFollower{http.DefaultTransport.(*http.Transport).Clone()}
}

type redirectFollower struct{ next http.RoundTripper }

func (f redirectFollower) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := f.next.RoundTrip(req)
	for hops := 0; err == nil && hops < 3 && resp.StatusCode == http.StatusTemporaryRedirect &&
		(req.Method == http.MethodGet || req.Method == http.MethodHead); hops++ {
		loc, lerr := resp.Location()
		if lerr != nil {
			return resp, nil
		}
		resp.Body.Close()
		next := req.Clone(req.Context())
		next.URL, next.Host = loc, ""
		if loc.Host != req.URL.Host {
			next.Header.Del("Authorization") // the signed URL carries its own
		}
		resp, err = f.next.RoundTrip(next)
	}
	return resp, err
}

// localAddrTowards is this machine's address on the route to ip: for the
// local cluster, the host end of the node's veth link, which the pods can
// reach.
func localAddrTowards(ip net.IP) net.IP {
	GinkgoHelper()
	conn, err := net.Dial("udp", net.JoinHostPort(ip.String(), "9")) // no packet is sent
	Expect(err).NotTo(HaveOccurred())
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).IP
}

// runningPods are the Registry's pods that run and are not terminating,
// sorted by name.
func runningPods(ns, regName string) []corev1.Pod {
	GinkgoHelper()
	dep := &appsv1.Deployment{}
	Expect(k8sClient.Get(suiteCtx, types.NamespacedName{Namespace: ns, Name: regName}, dep)).To(Succeed())
	list := &corev1.PodList{}
	Expect(k8sClient.List(suiteCtx, list, client.InNamespace(ns), client.MatchingLabels(dep.Spec.Selector.MatchLabels))).To(Succeed())
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			out = append(out, p)
		}
	}
	return out
}

var forwarding = regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) ->`)

// portForward forwards a free local port to the pod's port with kubectl
// for the rest of the spec, and returns 127.0.0.1:<port>.
func portForward(ns, pod string, port int) string {
	GinkgoHelper()
	cmd := exec.Command(kubectl, "-n", ns, "port-forward", "pod/"+pod, ":"+strconv.Itoa(port))
	out, err := cmd.StdoutPipe()
	Expect(err).NotTo(HaveOccurred())
	cmd.Stderr = GinkgoWriter
	Expect(cmd.Start()).To(Succeed())
	DeferCleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			if m := forwarding.FindStringSubmatch(s.Text()); m != nil {
				lines <- m[1]
			}
		}
		close(lines)
	}()
	var local string
	Eventually(lines).WithTimeout(30*time.Second).Should(Receive(&local), "kubectl port-forward to %s did not start", pod)
	return "127.0.0.1:" + local
}

func do(method, url string, body []byte, hdr map[string]string) *http.Response {
	GinkgoHelper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	Expect(err).NotTo(HaveOccurred())
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// pathOf is the path and query of an upload Location, absolute or not.
func pathOf(loc string) string {
	if i := strings.Index(loc, "/v2/"); i >= 0 {
		return loc[i:]
	}
	return loc
}

// pullOnce pulls r and checks its manifest is want and every blob arrives
// whole and matches its digest.
func pullOnce(r name.Reference, want *v1.Manifest, opts ...remote.Option) error {
	got, err := remote.Image(r, opts...)
	if err != nil {
		return err
	}
	m, err := got.Manifest()
	if err != nil {
		return err
	}
	if m.Config.Digest != want.Config.Digest || len(m.Layers) != len(want.Layers) {
		return fmt.Errorf("pulled another manifest")
	}
	if _, err := got.RawConfigFile(); err != nil {
		return err
	}
	layers, err := got.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		d, _ := l.Digest()
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("layer %s: %w", d, err)
		}
		if fmt.Sprintf("sha256:%x", h.Sum(nil)) != d.String() {
			return fmt.Errorf("layer %s: wrong bytes", d)
		}
	}
	return nil
}
