package controllers

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"sigs.k8s.io/controller-runtime/pkg/client"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
)

var emptyDir = berthv1alpha1.RegistryStorage{EmptyDir: &berthv1alpha1.EmptyDirStorage{}}

var _ = Describe("Registry API", func() {
	var n int
	newName := func() string { n++; return fmt.Sprintf("reg-%d", n) }

	It("stores a Registry and reads it back with its defaults applied", func() {
		reg := &berthv1alpha1.Registry{
			ObjectMeta: metav1.ObjectMeta{Name: newName(), Namespace: "default"},
			Spec: berthv1alpha1.RegistrySpec{
				Storage: berthv1alpha1.RegistryStorage{Filesystem: &berthv1alpha1.FilesystemStorage{}},
			},
		}
		Expect(k8sClient.Create(ctx, reg)).To(Succeed())

		var got berthv1alpha1.Registry
		Expect(k8sClient.Get(ctx, types.NamespacedName{Name: reg.Name, Namespace: "default"}, &got)).To(Succeed())
		Expect(got.UID).NotTo(BeEmpty())
		Expect(got.Spec.Replicas).To(Equal(ptr.To[int32](1)), "spec.replicas defaults to 1")
		Expect(got.Spec.Storage.Filesystem).NotTo(BeNil())
		Expect(got.Spec.Storage.Filesystem.Size).NotTo(BeNil())
		Expect(got.Spec.Storage.Filesystem.Size.Equal(resource.MustParse("10Gi"))).To(BeTrue(), "spec.storage.filesystem.size defaults to 10Gi")
		Expect(got.Spec.Storage.Filesystem.AccessModes).To(Equal([]corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}))
	})

	DescribeTable("refuses invalid specs with a message naming the field",
		func(spec berthv1alpha1.RegistrySpec, field string) {
			reg := &berthv1alpha1.Registry{
				ObjectMeta: metav1.ObjectMeta{Name: newName(), Namespace: "default"},
				Spec:       spec,
			}
			err := k8sClient.Create(ctx, reg)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "expected Invalid, got %v", err)
			Expect(err.Error()).To(ContainSubstring(field))
		},
		Entry("no storage", berthv1alpha1.RegistrySpec{}, "spec.storage"),
		Entry("two storage kinds", berthv1alpha1.RegistrySpec{Storage: berthv1alpha1.RegistryStorage{
			EmptyDir: &berthv1alpha1.EmptyDirStorage{}, InMemory: &berthv1alpha1.InMemoryStorage{},
		}}, "spec.storage"),
		Entry("negative replicas", berthv1alpha1.RegistrySpec{Replicas: ptr.To[int32](-1),
			Storage: berthv1alpha1.RegistryStorage{EmptyDir: &berthv1alpha1.EmptyDirStorage{}}}, "spec.replicas"),
		Entry("two replicas on a ReadWriteOnce volume", berthv1alpha1.RegistrySpec{Replicas: ptr.To[int32](2),
			Storage: berthv1alpha1.RegistryStorage{Filesystem: &berthv1alpha1.FilesystemStorage{}}}, "spec.replicas"),
		Entry("more access modes than there are", berthv1alpha1.RegistrySpec{Storage: berthv1alpha1.RegistryStorage{
			Filesystem: &berthv1alpha1.FilesystemStorage{AccessModes: []corev1.PersistentVolumeAccessMode{
				corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOncePod, corev1.ReadWriteOnce}}}},
			"spec.storage.filesystem.accessModes"),
		Entry("two replicas on emptyDir", berthv1alpha1.RegistrySpec{Replicas: ptr.To[int32](2),
			Storage: emptyDir}, "spec.replicas"),
		Entry("S3 without a bucket", berthv1alpha1.RegistrySpec{Storage: berthv1alpha1.RegistryStorage{
			S3: &berthv1alpha1.S3Storage{Region: "r"}}}, "spec.storage.s3.bucket"),
		Entry("S3 with half its credentials", berthv1alpha1.RegistrySpec{Storage: berthv1alpha1.RegistryStorage{
			S3: &berthv1alpha1.S3Storage{Bucket: "b", Region: "r", AccessKeySecretRef: &berthv1alpha1.SecretKeyRef{Name: "s", Key: "k"}}}}, "spec.storage.s3"),
		Entry("an empty Secret name", berthv1alpha1.RegistrySpec{Storage: berthv1alpha1.RegistryStorage{
			Azure: &berthv1alpha1.AzureStorage{AccountName: "a", Container: "c", AccountKeySecretRef: &berthv1alpha1.SecretKeyRef{Key: "k"}}}},
			"spec.storage.azure.accountKeySecretRef.name"),
		Entry("a bad cron schedule", berthv1alpha1.RegistrySpec{Storage: emptyDir,
			GarbageCollection: &berthv1alpha1.GarbageCollectionPolicy{Schedule: "every night"}}, "spec.garbageCollection.schedule"),
		Entry("a bad duration", berthv1alpha1.RegistrySpec{Storage: emptyDir,
			Proxy: &berthv1alpha1.RegistryProxy{RemoteURL: "https://r.example", TTL: &berthv1alpha1.Duration{Duration: -1}}}, "spec.proxy.ttl"),
		Entry("a port out of range", berthv1alpha1.RegistrySpec{Storage: emptyDir,
			Service: berthv1alpha1.RegistryService{Port: 70000}}, "spec.service.port"),
		Entry("htpasswd from a Secret and users", berthv1alpha1.RegistrySpec{Storage: emptyDir,
			Auth: &berthv1alpha1.RegistryAuth{Htpasswd: &berthv1alpha1.HtpasswdAuth{
				SecretRef: &berthv1alpha1.SecretKeyRef{Name: "h", Key: "htpasswd"},
				Users:     []berthv1alpha1.HtpasswdUser{{Username: "u", PasswordSecretRef: berthv1alpha1.SecretKeyRef{Name: "p", Key: "k"}}},
			}}}, "spec.auth.htpasswd"),
		Entry("two auth providers", berthv1alpha1.RegistrySpec{Storage: emptyDir,
			Auth: &berthv1alpha1.RegistryAuth{
				Htpasswd: &berthv1alpha1.HtpasswdAuth{SecretRef: &berthv1alpha1.SecretKeyRef{Name: "h", Key: "htpasswd"}},
				Token:    &berthv1alpha1.TokenAuth{Realm: "https://a", Service: "s", Issuer: "i", JWKSSecretRef: &berthv1alpha1.SecretKeyRef{Name: "j", Key: "k"}},
			}}, "spec.auth"),
		Entry("TLS with neither a Secret nor an issuer", berthv1alpha1.RegistrySpec{Storage: emptyDir,
			TLS: &berthv1alpha1.RegistryTLS{MinimumVersion: "tls1.3"}}, "spec.tls"),
		Entry("an unsupported TLS version", berthv1alpha1.RegistrySpec{Storage: emptyDir,
			TLS: &berthv1alpha1.RegistryTLS{SecretName: "t", MinimumVersion: "tls1.0"}}, "spec.tls.minimumVersion"),
	)

	It("stores a GarbageCollection and keeps its spec immutable", func() {
		gc := &berthv1alpha1.GarbageCollection{
			ObjectMeta: metav1.ObjectMeta{Name: "gc-1", Namespace: "default"},
			Spec:       berthv1alpha1.GarbageCollectionSpec{RegistryName: "reg-1"},
		}
		Expect(k8sClient.Create(ctx, gc)).To(Succeed())
		var got berthv1alpha1.GarbageCollection
		Expect(k8sClient.Get(ctx, types.NamespacedName{Name: "gc-1", Namespace: "default"}, &got)).To(Succeed())
		Expect(got.Spec.Timeout).NotTo(BeNil())
		Expect(got.Spec.Timeout.Duration.String()).To(Equal("1h0m0s"))

		// A patch, not an update: the controller writes the status meanwhile.
		before := got.DeepCopy()
		got.Spec.RegistryName = "other"
		err := k8sClient.Patch(ctx, &got, client.MergeFrom(before))
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "expected Invalid, got %v", err)
		Expect(err.Error()).To(ContainSubstring("spec is immutable"))
	})
})
