package v1alpha1

// RegistryValidation configures validation of pushed content.
type RegistryValidation struct {
	// disabled turns validation off.
	// +optional
	Disabled bool `json:"disabled,omitempty"`
	// allowURLs are regular expressions foreign-layer URLs must match.
	// +optional
	AllowURLs []string `json:"allowURLs,omitempty"`
	// denyURLs are regular expressions foreign-layer URLs must not match.
	// +optional
	DenyURLs []string `json:"denyURLs,omitempty"`
	// indexPlatforms is which platform images of an index must exist: all,
	// none or list.
	// +kubebuilder:validation:Enum=all;none;list
	// +optional
	IndexPlatforms string `json:"indexPlatforms,omitempty"`
	// indexPlatformList with indexPlatforms list.
	// +optional
	IndexPlatformList []Platform `json:"indexPlatformList,omitempty"`
}

// Platform is an OCI platform.
type Platform struct {
	// os, e.g. linux.
	// +kubebuilder:validation:MinLength=1
	// +required
	OS string `json:"os"`
	// architecture, e.g. amd64.
	// +kubebuilder:validation:MinLength=1
	// +required
	Architecture string `json:"architecture"`
}
