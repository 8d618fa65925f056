package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Duration is a length of time in Go's duration syntax ("30s", "1h30m",
// "0s"), written and read as a JSON string the way metav1.Duration is.
// The pattern is on the type so every duration field of the API checks
// the same syntax at admission; a field adds its own bounds (a CEL rule
// such as duration(self) >= duration('10s')). MaxLength keeps the
// string such a rule reads bounded; Go prints at most 24 characters.
//
// +kubebuilder:validation:Type=string
// +kubebuilder:validation:MaxLength=64
// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
type Duration metav1.Duration

// MarshalJSON writes the duration as a string, e.g. "1h0m0s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return metav1.Duration(d).MarshalJSON()
}

// UnmarshalJSON reads a duration string such as "90m".
func (d *Duration) UnmarshalJSON(b []byte) error {
	return (*metav1.Duration)(d).UnmarshalJSON(b)
}

// ToUnstructured gives the string form for the unstructured converter,
// as metav1.Duration does.
func (d Duration) ToUnstructured() interface{} {
	return metav1.Duration(d).ToUnstructured()
}
