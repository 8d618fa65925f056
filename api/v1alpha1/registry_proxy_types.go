package v1alpha1

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
	// +optional
	TTL *Duration `json:"ttl,omitempty"`
}
