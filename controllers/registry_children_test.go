package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/controllers/builders"
	"github.com/berth-dev/berth/registryd/configuration"
)

func TestUnsupportedProblem(t *testing.T) {
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
			got, err := unsupportedProblem(rendered, tt.support)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case got == nil && tt.want == nil:
			case got == nil || tt.want == nil || *got != *tt.want:
				t.Errorf("problem = %+v, want %+v", got, tt.want)
			}
		})
	}
}
