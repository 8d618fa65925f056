package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RegistryNotifications sends events to endpoints.
type RegistryNotifications struct {
	// IncludeReferences adds the references of manifests to events.
	// +optional
	IncludeReferences bool `json:"includeReferences,omitempty"`
	// Endpoints receive the events.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	// +optional
	Endpoints []NotificationEndpoint `json:"endpoints,omitempty"`
}

// NotificationEndpoint is one event listener.
type NotificationEndpoint struct {
	// Name of the endpoint.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9._-]*$`
	Name string `json:"name"`
	// URL events are POSTed to.
	// +kubebuilder:validation:Pattern=`^https?://`
	URL string `json:"url"`
	// Disabled stops sending without removing the endpoint.
	// +optional
	Disabled bool `json:"disabled,omitempty"`
	// Headers sent with every request (no credentials: use headersFrom).
	// +optional
	Headers map[string][]string `json:"headers,omitempty"`
	// HeadersFrom are headers whose value lives in a Secret.
	// +listType=map
	// +listMapKey=name
	// +optional
	HeadersFrom []HeaderFromSecret `json:"headersFrom,omitempty"`
	// Timeout of one delivery.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// Threshold of failures before backing off.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Threshold *int32 `json:"threshold,omitempty"`
	// Backoff after threshold failures.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	Backoff *metav1.Duration `json:"backoff,omitempty"`
	// IgnoredMediaTypes are not sent.
	// +optional
	IgnoredMediaTypes []string `json:"ignoredMediaTypes,omitempty"`
	// IgnoredActions are not sent.
	// +optional
	IgnoredActions []NotificationAction `json:"ignoredActions,omitempty"`
}

// NotificationAction is an event action.
// +kubebuilder:validation:Enum=pull;push;mount;delete
type NotificationAction string

// HeaderFromSecret is a header whose value lives in a Secret.
type HeaderFromSecret struct {
	// Name of the header (letters, digits and "-").
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9-]*$`
	Name string `json:"name"`
	// SecretRef holds the header's value.
	SecretRef SecretKeyRef `json:"secretRef"`
}
