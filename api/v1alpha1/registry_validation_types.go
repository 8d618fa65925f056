package v1alpha1

// RegistryValidation configures validation of pushed content.
type RegistryValidation struct {
	// Disabled turns validation off.
	// +optional
	Disabled bool `json:"disabled,omitempty"`
	// AllowURLs are regular expressions foreign-layer URLs must match.
	// +optional
	AllowURLs []string `json:"allowURLs,omitempty"`
	// DenyURLs are regular expressions foreign-layer URLs must not match.
	// +optional
	DenyURLs []string `json:"denyURLs,omitempty"`
	// IndexPlatforms is which platform images of an index must exist: all,
	// none or list.
	// +kubebuilder:validation:Enum=all;none;list
	// +optional
	IndexPlatforms string `json:"indexPlatforms,omitempty"`
	// IndexPlatformList with indexPlatforms list.
	// +optional
	IndexPlatformList []Platform `json:"indexPlatformList,omitempty"`
}

// Platform is an OCI platform.
type Platform struct {
	// OS, e.g. linux.
	// +kubebuilder:validation:MinLength=1
	OS string `json:"os"`
	// Architecture, e.g. amd64.
	// +kubebuilder:validation:MinLength=1
	Architecture string `json:"architecture"`
}
