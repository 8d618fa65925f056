// Package v1alpha1 contains the berth.dev/v1alpha1 API: Registry, a
// registry run by the operator, and GarbageCollection, one garbage
// collection run against a Registry.
//
// This package depends on nothing of Berth's own (DESIGN.md, dependency rules).
//
// +kubebuilder:object:generate=true
// +groupName=berth.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "berth.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the API's types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the API's types to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
