package controllers

import (
	"errors"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/controllers/builders"
	"github.com/berth-dev/berth/registryd/configuration"
)

func TestConfigSupported(t *testing.T) {
	// Every rendered config uses http.debug and http.headers.
	base := []string{"http.debug", "http.headers"}
	stage := configuration.Support{StorageDrivers: []string{configuration.DriverFilesystem, configuration.DriverInMemory}, Features: base}
	inMemory := berthv1alpha1.RegistryStorage{InMemory: &berthv1alpha1.InMemoryStorage{}}
	tests := map[string]struct {
		spec    berthv1alpha1.RegistrySpec
		support configuration.Support
		want    *problem
	}{
		"implemented": {spec: berthv1alpha1.RegistrySpec{Storage: inMemory}, support: stage},
		"driver not implemented": {
			spec:    berthv1alpha1.RegistrySpec{Storage: berthv1alpha1.RegistryStorage{GCS: &berthv1alpha1.GCSStorage{Bucket: "b"}}},
			support: stage,
			want:    &problem{berthv1alpha1.ReasonUnsupportedConfig, "registryd does not implement yet: storage.gcs: not supported yet"},
		},
		"every refused key is named": {
			spec: berthv1alpha1.RegistrySpec{Storage: inMemory, ReadOnly: true,
				Proxy: &berthv1alpha1.RegistryProxy{RemoteURL: "https://registry-1.docker.io"}},
			support: stage,
			want: &problem{berthv1alpha1.ReasonUnsupportedConfig,
				"registryd does not implement yet: storage.maintenance.readonly: not supported yet; proxy: not supported yet"},
		},
		"implemented later": {
			spec:    berthv1alpha1.RegistrySpec{Storage: inMemory, Proxy: &berthv1alpha1.RegistryProxy{RemoteURL: "https://registry-1.docker.io"}},
			support: configuration.Support{StorageDrivers: []string{configuration.DriverInMemory}, Features: append(base, "proxy")},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			reg := &berthv1alpha1.Registry{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "ns"}, Spec: tt.spec}
			rendered, err := builders.Render(reg, effectiveReadOnly(reg))
			if err != nil {
				t.Fatal(err)
			}
			got := configSupported(&policyInput{reg: reg, rendered: rendered, support: tt.support})
			switch {
			case got == nil && tt.want == nil:
			case got == nil || tt.want == nil || *got != *tt.want:
				t.Errorf("problem = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// policyCase is one row of a policy's table: the input (reg built from
// spec) and the problem wanted (nil: none).
type policyCase struct {
	spec berthv1alpha1.RegistrySpec
	in   policyInput
	want *problem
}

func runPolicyTable(t *testing.T, p policy, tests map[string]policyCase) {
	t.Helper()
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			in := tt.in
			in.reg = &berthv1alpha1.Registry{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "ns"}, Spec: tt.spec}
			got := p(&in)
			switch {
			case got == nil && tt.want == nil:
			case got == nil || tt.want == nil || *got != *tt.want:
				t.Errorf("problem = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReplicasFitVolume(t *testing.T) {
	fs := func(modes ...corev1.PersistentVolumeAccessMode) berthv1alpha1.RegistryStorage {
		return berthv1alpha1.RegistryStorage{Filesystem: &berthv1alpha1.FilesystemStorage{AccessModes: modes}}
	}
	tooMany := &problem{berthv1alpha1.ReasonInvalidStorage, "spec.replicas: a ReadWriteOnce filesystem volume allows at most 1 replica"}
	runPolicyTable(t, replicasFitVolume, map[string]policyCase{
		"one replica on ReadWriteOnce":          {spec: berthv1alpha1.RegistrySpec{Storage: fs()}},
		"two replicas on the default mode":      {spec: berthv1alpha1.RegistrySpec{Replicas: ptr.To[int32](2), Storage: fs()}, want: tooMany},
		"two replicas on ReadWriteOnce":         {spec: berthv1alpha1.RegistrySpec{Replicas: ptr.To[int32](2), Storage: fs(corev1.ReadWriteOnce)}, want: tooMany},
		"two replicas on ReadWriteMany":         {spec: berthv1alpha1.RegistrySpec{Replicas: ptr.To[int32](2), Storage: fs(corev1.ReadWriteMany)}},
		"two replicas on a shared object store": {spec: berthv1alpha1.RegistrySpec{Replicas: ptr.To[int32](2), Storage: berthv1alpha1.RegistryStorage{InMemory: &berthv1alpha1.InMemoryStorage{}}}},
	})
}

func TestScheduleParses(t *testing.T) {
	schedule := func(s string) berthv1alpha1.RegistrySpec {
		return berthv1alpha1.RegistrySpec{GarbageCollection: &berthv1alpha1.GarbageCollectionPolicy{Schedule: s}}
	}
	runPolicyTable(t, scheduleParses, map[string]policyCase{
		"no garbage collection": {},
		"no schedule":           {spec: schedule("")},
		"five fields":           {spec: schedule("0 3 * * *")},
		"a descriptor":          {spec: schedule("@daily")},
		"an hour out of range": {spec: schedule("0 25 * * *"), want: &problem{berthv1alpha1.ReasonInvalidSchedule,
			"spec.garbageCollection.schedule: end of range (25) above maximum (23): 25"}},
	})
}

func TestCertManagerInstalled(t *testing.T) {
	issued := berthv1alpha1.RegistrySpec{TLS: &berthv1alpha1.RegistryTLS{IssuerRef: &berthv1alpha1.IssuerRef{Name: "ca"}}}
	runPolicyTable(t, certManagerInstalled, map[string]policyCase{
		"no TLS":                    {},
		"a Secret, no cert-manager": {spec: berthv1alpha1.RegistrySpec{TLS: &berthv1alpha1.RegistryTLS{SecretName: "tls"}}},
		"an issuer, cert-manager":   {spec: issued, in: policyInput{certificateCRD: true}},
		"an issuer, no cert-manager": {spec: issued, want: &problem{berthv1alpha1.ReasonCertManagerMissing,
			"spec.tls.issuerRef: the cert-manager Certificate CRD is not installed"}},
	})
}

func TestSecretsExist(t *testing.T) {
	spec := berthv1alpha1.RegistrySpec{Auth: &berthv1alpha1.RegistryAuth{Htpasswd: &berthv1alpha1.HtpasswdAuth{
		SecretRef: &berthv1alpha1.SecretKeyRef{Name: "users", Key: "htpasswd"}}}}
	secret := func(keys ...string) map[string]*corev1.Secret {
		sec := &corev1.Secret{Data: map[string][]byte{}}
		for _, k := range keys {
			sec.Data[k] = []byte("x")
		}
		return map[string]*corev1.Secret{"users": sec}
	}
	runPolicyTable(t, secretsExist, map[string]policyCase{
		"no Secret referenced": {},
		"present":              {spec: spec, in: policyInput{secrets: secret("htpasswd")}},
		"missing": {spec: spec, in: policyInput{secrets: map[string]*corev1.Secret{"users": nil}},
			want: &problem{berthv1alpha1.ReasonSecretNotFound, `spec.auth.htpasswd.secretRef: Secret "users" not found`}},
		"without the key": {spec: spec, in: policyInput{secrets: secret("other")},
			want: &problem{berthv1alpha1.ReasonSecretKeyNotFound, `spec.auth.htpasswd.secretRef: Secret "users" has no key "htpasswd"`}},
	})
}

func TestConfigRenders(t *testing.T) {
	runPolicyTable(t, configRenders, map[string]policyCase{
		"rendered": {},
		"refused": {in: policyInput{invalid: &builders.InvalidConfigError{Err: errors.New("storage: no driver")}},
			want: &problem{berthv1alpha1.ReasonInvalidConfig, (&builders.InvalidConfigError{Err: errors.New("storage: no driver")}).Error()}},
	})
}

func TestManagerImageKnown(t *testing.T) {
	scheduled := berthv1alpha1.RegistrySpec{GarbageCollection: &berthv1alpha1.GarbageCollectionPolicy{Schedule: "@daily"}}
	runPolicyTable(t, managerImageKnown, map[string]policyCase{
		"no schedule, no image":   {spec: berthv1alpha1.RegistrySpec{GarbageCollection: &berthv1alpha1.GarbageCollectionPolicy{}}},
		"a schedule and an image": {spec: scheduled, in: policyInput{managerImage: "berth/manager:1"}},
		"a schedule, no image": {spec: scheduled, want: &problem{berthv1alpha1.ReasonManagerImageUnknown,
			"spec.garbageCollection.schedule: the manager was started without its own image (--manager-image / MANAGER_IMAGE), which the schedule's CronJob runs"}},
	})
}

func TestPolicyChainStopsAtTheFirstProblem(t *testing.T) {
	var ran []string
	check := func(name string, p *problem) policy {
		return func(*policyInput) *problem { ran = append(ran, name); return p }
	}
	first, second := &problem{"First", "a"}, &problem{"Second", "b"}
	chain := policyChain{check("ok", nil), check("first", first), check("second", second)}
	if got := chain.evaluate(&policyInput{}); got != first {
		t.Errorf("evaluate = %+v, want the first problem %+v", got, first)
	}
	if want := []string{"ok", "first"}; !slices.Equal(ran, want) {
		t.Errorf("ran %q, want %q (nothing after the first problem)", ran, want)
	}
	ran = nil
	if got := (policyChain{check("ok", nil), check("fine", nil)}).evaluate(&policyInput{}); got != nil || len(ran) != 2 {
		t.Errorf("evaluate = %+v after %q, want nil after both", got, ran)
	}
}
