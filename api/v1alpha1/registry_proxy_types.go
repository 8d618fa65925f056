package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RegistryProxy is a pull-through cache of a remote registry.
//
// +kubebuilder:validation:XValidation:rule="has(self.usernameSecretRef) == has(self.passwordSecretRef)",message="spec.proxy: set both usernameSecretRef and passwordSecretRef, or neither"
type RegistryProxy struct {
	// remoteURL of the upstream registry.
	// +kubebuilder:validation:Pattern=`^https?://`
	// +required
	RemoteURL string `json:"remoteURL"`
	// usernameSecretRef is the upstream user.
	// +optional
	UsernameSecretRef *SecretKeyRef `json:"usernameSecretRef,omitempty"`
	// passwordSecretRef is the upstream password.
	// +optional
	PasswordSecretRef *SecretKeyRef `json:"passwordSecretRef,omitempty"`
	// ttl of cached content (default 168h; 0s never expires).
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	TTL *metav1.Duration `json:"ttl,omitempty"`
}
