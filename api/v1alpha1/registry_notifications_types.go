package v1alpha1

// RegistryNotifications sends events to endpoints.
type RegistryNotifications struct {
	// includeReferences adds the references of manifests to events.
	// +optional
	IncludeReferences bool `json:"includeReferences,omitempty"`
	// endpoints receive the events.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	// +optional
	Endpoints []NotificationEndpoint `json:"endpoints,omitempty"`
}

// NotificationEndpoint is one event listener.
type NotificationEndpoint struct {
	// name of the endpoint.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9._-]*$`
	// +required
	Name string `json:"name"`
	// url events are POSTed to.
	// +kubebuilder:validation:Pattern=`^https?://`
	// +required
	URL string `json:"url"`
	// disabled stops sending without removing the endpoint.
	// +optional
	Disabled bool `json:"disabled,omitempty"`
	// headers sent with every request (no credentials: use headersFrom).
	// +optional
	Headers map[string][]string `json:"headers,omitempty"`
	// headersFrom are headers whose value lives in a Secret.
	// +listType=map
	// +listMapKey=name
	// +optional
	HeadersFrom []HeaderFromSecret `json:"headersFrom,omitempty"`
	// timeout of one delivery.
	// +optional
	Timeout *Duration `json:"timeout,omitempty"`
	// threshold of failures before backing off.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Threshold *int32 `json:"threshold,omitempty"`
	// backoff after threshold failures.
	// +optional
	Backoff *Duration `json:"backoff,omitempty"`
	// ignoredMediaTypes are not sent.
	// +optional
	IgnoredMediaTypes []string `json:"ignoredMediaTypes,omitempty"`
	// ignoredActions are not sent.
	// +optional
	IgnoredActions []NotificationAction `json:"ignoredActions,omitempty"`
}

// NotificationAction is an event action.
// +kubebuilder:validation:Enum=pull;push;mount;delete
type NotificationAction string

// HeaderFromSecret is a header whose value lives in a Secret.
type HeaderFromSecret struct {
	// name of the header (letters, digits and "-").
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9-]*$`
	// +required
	Name string `json:"name"`
	// secretRef holds the header's value.
	// +required
	SecretRef SecretKeyRef `json:"secretRef"`
}
