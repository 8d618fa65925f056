//go:build e2e

package e2e

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/internal/testutil"
)

// One Registry, followed through its life: each spec builds on the one
// before (Ordered), as a user's registry would.
var _ = Describe("A Registry on a PVC with htpasswd users and TLS", Ordered, func() {
	const (
		regName  = "e2e"
		tlsName  = "e2e-tls"
		repo     = "e2e/random"
		header   = "X-Berth-E2E"
		userName = "alice"
	)
	var (
		ns       string
		ca       *testutil.CA
		nodeIP   net.IP
		host     string // NODE_IP:nodePort
		password = "first-" + rand.String(12)
		img      v1.Image
		ref      name.Reference
	)

	key := func(n string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: n} }

	registry := func() *berthv1alpha1.Registry {
		GinkgoHelper()
		reg := &berthv1alpha1.Registry{}
		Expect(k8sClient.Get(suiteCtx, key(regName), reg)).To(Succeed())
		return reg
	}

	// httpClient trusts the suite's CA only.
	httpClient := func() *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: trusting(ca)}
	}

	// v2Status is the status of GET /v2/ with user:pass (anonymous when user is empty).
	v2Status := func(user, pass string) (int, http.Header, error) {
		req, err := http.NewRequest(http.MethodGet, "https://"+host+"/v2/", nil)
		if err != nil {
			return 0, nil, err
		}
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := httpClient().Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header, nil
	}

	remoteOpts := func(pass string) []remote.Option {
		return []remote.Option{
			remote.WithAuth(&authn.Basic{Username: userName, Password: pass}),
			remote.WithTransport(trusting(ca)),
			remote.WithContext(suiteCtx),
		}
	}

	// expectPulled pulls ref and checks it is byte for byte the image pushed.
	expectPulled := func(pass string) {
		GinkgoHelper()
		expectSameImage(img, ref, remoteOpts(pass)...)
	}

	// readyAtGeneration: Ready=True for the current generation.
	readyAtGeneration := func(g Gomega) { registryReady(g, key(regName)) }

	// pods are the registry's pods that are not being deleted, by UID, with their restart counts.
	pods := func() map[types.UID]int32 {
		GinkgoHelper()
		dep := &appsv1.Deployment{}
		Expect(k8sClient.Get(suiteCtx, key(regName), dep)).To(Succeed())
		list := &corev1.PodList{}
		Expect(k8sClient.List(suiteCtx, list, client.InNamespace(ns),
			client.MatchingLabels(dep.Spec.Selector.MatchLabels))).To(Succeed())
		out := map[types.UID]int32{}
		for _, p := range list.Items {
			if p.DeletionTimestamp != nil {
				continue
			}
			var restarts int32
			for _, cs := range p.Status.ContainerStatuses {
				restarts += cs.RestartCount
			}
			out[p.UID] = restarts
		}
		return out
	}

	putSecret := func(s *corev1.Secret) {
		GinkgoHelper()
		s.Namespace = ns
		Expect(k8sClient.Patch(suiteCtx, s, client.Apply, client.FieldOwner("berth-e2e"), client.ForceOwnership)).To(Succeed())
	}

	tlsSecret := func() string {
		GinkgoHelper()
		crt, k := ca.IssueFor(GinkgoT(), regName,
			[]string{regName + "." + ns + ".svc", regName + "." + ns + ".svc.cluster.local", regName},
			[]net.IP{nodeIP})
		pair, err := tls.X509KeyPair(crt, k)
		Expect(err).NotTo(HaveOccurred())
		putSecret(&corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: tlsName},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: k},
		})
		return pair.Leaf.SerialNumber.String()
	}

	passwordSecret := func(pass string) {
		GinkgoHelper()
		putSecret(&corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: userName + "-password"},
			StringData: map[string]string{"password": pass},
		})
	}

	// servedSerial is the serial number of the certificate the registry serves now.
	servedSerial := func() (string, error) {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", host,
			&tls.Config{RootCAs: ca.Pool(), ServerName: nodeIP.String()})
		if err != nil {
			return "", err
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
	}

	BeforeAll(func() {
		installWithKustomize()

		ca = testutil.NewCA(GinkgoT(), "berth e2e CA")

		nodeIP = nodeInternalIP()

		ns = createNamespace("berth-e2e-")

		passwordSecret(password)
		putSecret(&corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: "bob-password"},
			StringData: map[string]string{"password": "bob-" + rand.String(12)},
		})
		tlsSecret()

		size := resource.MustParse("1Gi")
		reg := &berthv1alpha1.Registry{
			ObjectMeta: metav1.ObjectMeta{Name: regName, Namespace: ns},
			Spec: berthv1alpha1.RegistrySpec{
				Replicas: ptr.To[int32](1),
				Storage: berthv1alpha1.RegistryStorage{
					Filesystem: &berthv1alpha1.FilesystemStorage{
						Size:        &size,
						AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					},
					Delete: &berthv1alpha1.StorageDelete{Enabled: true},
				},
				Auth: &berthv1alpha1.RegistryAuth{Htpasswd: &berthv1alpha1.HtpasswdAuth{
					Realm: "Berth e2e",
					Users: []berthv1alpha1.HtpasswdUser{
						{Username: userName, PasswordSecretRef: berthv1alpha1.SecretKeyRef{Name: userName + "-password", Key: "password"}},
						{Username: "bob", PasswordSecretRef: berthv1alpha1.SecretKeyRef{Name: "bob-password", Key: "password"}},
					},
				}},
				TLS:     &berthv1alpha1.RegistryTLS{SecretName: tlsName},
				Service: berthv1alpha1.RegistryService{Type: corev1.ServiceTypeNodePort},
			},
		}
		By("creating the Registry")
		Expect(k8sClient.Create(suiteCtx, reg)).To(Succeed())
	})

	It("becomes Ready and is listed by kubectl get registries", func() {
		Eventually(readyAtGeneration).WithTimeout(readyTimeout).WithPolling(poll).Should(Succeed())

		svc := &corev1.Service{}
		Expect(k8sClient.Get(suiteCtx, key(regName), svc)).To(Succeed())
		Expect(svc.Spec.Type).To(Equal(corev1.ServiceTypeNodePort))
		Expect(svc.Spec.Ports).NotTo(BeEmpty())
		Expect(svc.Spec.Ports[0].NodePort).NotTo(BeZero())
		host = net.JoinHostPort(nodeIP.String(), strconv.Itoa(int(svc.Spec.Ports[0].NodePort)))

		pvc := &corev1.PersistentVolumeClaim{}
		Expect(k8sClient.Get(suiteCtx, key(regName+"-data"), pvc)).To(Succeed())
		Expect(pvc.Status.Phase).To(Equal(corev1.ClaimBound))

		out := output(kubectl, "get", "registries", "-n", ns)
		fmt.Fprintln(GinkgoWriter, out)
		Expect(out).To(MatchRegexp(`NAME\s+READY\s+REPLICAS\s+STORAGE\s+URL\s+READ-ONLY\s+LAST-GC\s+AGE`))
		Expect(out).To(MatchRegexp(`(?m)^%s\s+True\s+1\s+filesystem\s+https://%s\.%s\.svc:5000\s+False\s`, regName, regName, ns))
		Expect(output(kubectl, "get", "reg", regName, "-n", ns, "-o", "name")).To(Equal("registry.berth.dev/" + regName + "\n"))
	})

	It("serves the test CA's certificate and refuses anonymous access", func() {
		Eventually(servedSerial).WithTimeout(readyTimeout).WithPolling(poll).ShouldNot(BeEmpty())

		status, hdr, err := v2Status("", "")
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(http.StatusUnauthorized))
		Expect(hdr.Get("WWW-Authenticate")).To(HavePrefix("Basic "))

		status, _, err = v2Status(userName, "wrong")
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(http.StatusUnauthorized))

		resp, err := httpClient().Get("https://" + host + "/v2/" + repo + "/tags/list")
		Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))
	})

	It("pushes and pulls an image byte for byte through the Service", func() {
		var err error
		img, err = random.Image(64*1024, 3)
		Expect(err).NotTo(HaveOccurred())
		ref, err = name.ParseReference(host + "/" + repo + ":v1")
		Expect(err).NotTo(HaveOccurred())
		Expect(remote.Write(ref, img, remoteOpts(password)...)).To(Succeed())
		expectPulled(password)

		By("refusing an anonymous pull of the pushed image")
		_, err = remote.Image(ref, remote.WithTransport(trusting(ca)), remote.WithContext(suiteCtx))
		var terr *transport.Error
		Expect(errors.As(err, &terr)).To(BeTrue(), "%v", err)
		Expect(terr.StatusCode).To(Equal(http.StatusUnauthorized))
	})

	It("takes a changed password without restarting a pod", func() {
		before := pods()
		Expect(before).To(HaveLen(1))
		old := password
		password = "second-" + rand.String(12)
		passwordSecret(password)

		Eventually(func() (int, error) {
			s, _, err := v2Status(userName, password)
			return s, err
		}).WithTimeout(secretSyncWait).WithPolling(2 * poll).Should(Equal(http.StatusOK))
		status, _, err := v2Status(userName, old)
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(http.StatusUnauthorized), "the old password still works")
		expectPulled(password)
		Expect(pods()).To(Equal(before), "pod UIDs or restart counts changed")
	})

	It("serves a replaced TLS certificate without restarting a pod", func() {
		before := pods()
		serial := tlsSecret()
		Eventually(servedSerial).WithTimeout(secretSyncWait).WithPolling(2 * poll).Should(Equal(serial))
		expectPulled(password)
		Expect(pods()).To(Equal(before), "pod UIDs or restart counts changed")
	})

	It("rolls the pods on a spec change and keeps the data on the PVC", func() {
		before := pods()
		reg := registry()
		patch := client.MergeFrom(reg.DeepCopy())
		reg.Spec.HTTP = &berthv1alpha1.RegistryHTTP{Headers: map[string][]string{header: {"rolled"}}}
		Expect(k8sClient.Patch(suiteCtx, reg, patch)).To(Succeed())

		Eventually(func(g Gomega) {
			readyAtGeneration(g)
			now := pods()
			g.Expect(now).To(HaveLen(1))
			for uid := range now {
				g.Expect(before).NotTo(HaveKey(uid), "the old pod still serves")
			}
			s, hdr, err := v2Status(userName, password)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(s).To(Equal(http.StatusOK))
			g.Expect(hdr.Get(header)).To(Equal("rolled"))
		}).WithTimeout(readyTimeout).WithPolling(poll).Should(Succeed())
		expectPulled(password)
	})

	It("is refused by the API server when the spec is invalid", func() {
		bad := func(mutate func(*berthv1alpha1.Registry)) error {
			reg := &berthv1alpha1.Registry{
				ObjectMeta: metav1.ObjectMeta{Name: "bad", Namespace: ns},
				Spec: berthv1alpha1.RegistrySpec{Storage: berthv1alpha1.RegistryStorage{
					Filesystem: &berthv1alpha1.FilesystemStorage{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}},
				}},
			}
			mutate(reg)
			return k8sClient.Create(suiteCtx, reg, client.DryRunAll)
		}
		err := bad(func(r *berthv1alpha1.Registry) { r.Spec.Replicas = ptr.To[int32](2) })
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
		Expect(err.Error()).To(ContainSubstring("spec.replicas"))

		err = bad(func(r *berthv1alpha1.Registry) { r.Spec.Storage.EmptyDir = &berthv1alpha1.EmptyDirStorage{} })
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
		Expect(err.Error()).To(ContainSubstring("spec.storage"))

		By("leaving the running Registry as it was")
		Expect(k8sClient.Get(suiteCtx, key("bad"), &berthv1alpha1.Registry{})).To(Satisfy(apierrors.IsNotFound))
		reg := registry()
		patch := client.MergeFrom(reg.DeepCopy())
		reg.Spec.Replicas = ptr.To[int32](3)
		err = k8sClient.Patch(suiteCtx, reg, patch)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
		Expect(registry().Spec.Replicas).To(HaveValue(Equal(int32(1))))
	})

	It("removes its children, PVC and volume included, when deleted", func() {
		pvc := &corev1.PersistentVolumeClaim{}
		Expect(k8sClient.Get(suiteCtx, key(regName+"-data"), pvc)).To(Succeed())
		pv := pvc.Spec.VolumeName
		Expect(pv).NotTo(BeEmpty())

		Expect(k8sClient.Delete(suiteCtx, registry())).To(Succeed())
		children := []client.Object{
			&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: regName}},
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: regName}},
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: regName + "-config"}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: regName + "-http-secret"}},
			&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: regName + "-data"}},
		}
		for _, c := range children {
			Eventually(func() error {
				return k8sClient.Get(suiteCtx, key(c.GetName()), c)
			}).WithTimeout(readyTimeout).WithPolling(poll).Should(Satisfy(apierrors.IsNotFound), "%T %s", c, c.GetName())
		}
		Eventually(func() error {
			return k8sClient.Get(suiteCtx, types.NamespacedName{Name: pv}, &corev1.PersistentVolume{})
		}).WithTimeout(readyTimeout).WithPolling(poll).Should(Satisfy(apierrors.IsNotFound), "PersistentVolume %s", pv)
		Eventually(func() int { return len(podsIn(ns)) }).WithTimeout(readyTimeout).WithPolling(poll).Should(BeZero())

		By("keeping the user's own Secrets")
		for _, s := range []string{userName + "-password", "bob-password", tlsName} {
			Expect(k8sClient.Get(suiteCtx, key(s), &corev1.Secret{})).To(Succeed(), s)
		}
		secrets := &corev1.SecretList{}
		Expect(k8sClient.List(suiteCtx, secrets, client.InNamespace(ns))).To(Succeed())
		Expect(secrets.Items).To(HaveLen(3), "generated Secrets left behind")
	})
})

// registryReady: the Registry at key is Ready=True for its current generation.
func registryReady(g Gomega, key types.NamespacedName) {
	reg := &berthv1alpha1.Registry{}
	g.Expect(k8sClient.Get(suiteCtx, key, reg)).To(Succeed())
	g.Expect(reg.Status.ObservedGeneration).To(Equal(reg.Generation))
	c := meta.FindStatusCondition(reg.Status.Conditions, berthv1alpha1.ConditionReady)
	g.Expect(c).NotTo(BeNil())
	g.Expect(c.Status).To(Equal(metav1.ConditionTrue), "Ready: %s: %s", c.Reason, c.Message)
	g.Expect(c.ObservedGeneration).To(Equal(reg.Generation))
}

// expectSameImage pulls ref and checks it is byte for byte the image want:
// manifest, config blob and every compressed layer.
func expectSameImage(want v1.Image, ref name.Reference, opts ...remote.Option) {
	GinkgoHelper()
	got, err := remote.Image(ref, opts...)
	Expect(err).NotTo(HaveOccurred())
	wantManifest, err := want.RawManifest()
	Expect(err).NotTo(HaveOccurred())
	gotManifest, err := got.RawManifest()
	Expect(err).NotTo(HaveOccurred())
	Expect(gotManifest).To(Equal(wantManifest), "manifest bytes")
	Expect(testutil.ImageBlobs(GinkgoT(), got)).To(Equal(testutil.ImageBlobs(GinkgoT(), want)), "config and layer bytes by digest")
}

// nodeInternalIP is the InternalIP of the cluster's first node, where
// NodePort Services are reached.
func nodeInternalIP() net.IP {
	GinkgoHelper()
	nodes := &corev1.NodeList{}
	Expect(k8sClient.List(suiteCtx, nodes)).To(Succeed())
	Expect(nodes.Items).NotTo(BeEmpty())
	for _, a := range nodes.Items[0].Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			if ip := net.ParseIP(a.Address); ip != nil {
				return ip
			}
		}
	}
	Fail("node " + nodes.Items[0].Name + " has no InternalIP")
	return nil
}

func podsIn(ns string) []corev1.Pod {
	GinkgoHelper()
	list := &corev1.PodList{}
	Expect(k8sClient.List(suiteCtx, list, client.InNamespace(ns))).To(Succeed())
	return list.Items
}

// trusting is an HTTP transport that trusts ca only.
func trusting(ca *testutil.CA) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
	return t
}
