package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RegistryAuth selects at most one access controller.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.htpasswd) && has(self.token))",message="spec.auth: set at most one of htpasswd and token"
type RegistryAuth struct {
	// Htpasswd checks basic credentials against a bcrypt htpasswd file.
	// +optional
	Htpasswd *HtpasswdAuth `json:"htpasswd,omitempty"`
	// Token checks bearer tokens issued by an external token service.
	// +optional
	Token *TokenAuth `json:"token,omitempty"`
}

// HtpasswdAuth is htpasswd authentication, from an existing htpasswd Secret
// or from users whose passwords live in Secrets (the operator hashes them
// with bcrypt into a generated Secret).
//
// +kubebuilder:validation:XValidation:rule="has(self.secretRef) != (has(self.users) && size(self.users) > 0)",message="spec.auth.htpasswd: set exactly one of secretRef and users"
type HtpasswdAuth struct {
	// Realm of the basic auth challenge.
	// +kubebuilder:default="Registry"
	// +kubebuilder:validation:MinLength=1
	// +optional
	Realm string `json:"realm,omitempty"`
	// SecretRef is an existing htpasswd file (bcrypt entries).
	// +optional
	SecretRef *SecretKeyRef `json:"secretRef,omitempty"`
	// Users are hashed into a generated htpasswd Secret.
	// +listType=map
	// +listMapKey=username
	// +kubebuilder:validation:MaxItems=256
	// +optional
	Users []HtpasswdUser `json:"users,omitempty"`
}

// HtpasswdUser is one user of a generated htpasswd file.
type HtpasswdUser struct {
	// Username; no colon.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:Pattern=`^[^:\s]+$`
	Username string `json:"username"`
	// PasswordSecretRef is the user's clear-text password.
	PasswordSecretRef SecretKeyRef `json:"passwordSecretRef"`
}

// TokenAuth checks bearer JWTs from an external token service.
//
// +kubebuilder:validation:XValidation:rule="has(self.rootCertBundleSecretRef) || has(self.jwksSecretRef)",message="spec.auth.token: set rootCertBundleSecretRef or jwksSecretRef"
type TokenAuth struct {
	// Realm is the token service URL clients are sent to.
	// +kubebuilder:validation:Pattern=`^https?://`
	Realm string `json:"realm"`
	// Service is the audience tokens must name.
	// +kubebuilder:validation:MinLength=1
	Service string `json:"service"`
	// Issuer tokens must name.
	// +kubebuilder:validation:MinLength=1
	Issuer string `json:"issuer"`
	// RootCertBundleSecretRef holds the PEM certificates that sign tokens.
	// +optional
	RootCertBundleSecretRef *SecretKeyRef `json:"rootCertBundleSecretRef,omitempty"`
	// JWKSSecretRef holds the JSON Web Key Set that signs tokens.
	// +optional
	JWKSSecretRef *SecretKeyRef `json:"jwksSecretRef,omitempty"`
	// SigningAlgorithms accepted; all of registryd's when empty.
	// +optional
	SigningAlgorithms []string `json:"signingAlgorithms,omitempty"`
}

// RegistryTLS serves HTTPS.
//
// +kubebuilder:validation:XValidation:rule="has(self.secretName) || has(self.issuerRef)",message="spec.tls: set secretName or issuerRef"
type RegistryTLS struct {
	// SecretName is a kubernetes.io/tls Secret (tls.crt, tls.key). With
	// issuerRef it is the Secret the cert-manager Certificate writes
	// (default <registry>-tls).
	// +kubebuilder:validation:MinLength=1
	// +optional
	SecretName string `json:"secretName,omitempty"`
	// IssuerRef has cert-manager issue the certificate. Only used when the
	// cert-manager CRDs exist; otherwise the Registry is Degraded.
	// +optional
	IssuerRef *IssuerRef `json:"issuerRef,omitempty"`
	// DNSNames of the cert-manager certificate, in addition to the Service's
	// cluster names.
	// +optional
	DNSNames []string `json:"dnsNames,omitempty"`
	// ClientCASecretRef is a PEM bundle of CAs for client certificates
	// (mutual TLS).
	// +optional
	ClientCASecretRef *SecretKeyRef `json:"clientCASecretRef,omitempty"`
	// ClientAuth is the client certificate policy when clientCASecretRef is
	// set (default require-and-verify-client-cert).
	// +kubebuilder:validation:Enum=request-client-cert;require-any-client-cert;verify-client-cert-if-given;require-and-verify-client-cert
	// +optional
	ClientAuth string `json:"clientAuth,omitempty"`
	// MinimumVersion of TLS (default tls1.2).
	// +kubebuilder:validation:Enum=tls1.2;tls1.3
	// +optional
	MinimumVersion string `json:"minimumVersion,omitempty"`
	// CipherSuites allowed (TLS 1.2 names as Go spells them).
	// +optional
	CipherSuites []string `json:"cipherSuites,omitempty"`
}

// IssuerRef names a cert-manager issuer.
type IssuerRef struct {
	// Name of the issuer.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Kind is Issuer or ClusterIssuer.
	// +kubebuilder:default=Issuer
	// +kubebuilder:validation:Enum=Issuer;ClusterIssuer
	// +optional
	Kind string `json:"kind,omitempty"`
	// Group of the issuer.
	// +kubebuilder:default="cert-manager.io"
	// +optional
	Group string `json:"group,omitempty"`
}

// RegistryHTTP are options of the HTTP server.
type RegistryHTTP struct {
	// Prefix before /v2/, starting and ending with "/".
	// +kubebuilder:validation:Pattern=`^/(.*/)?$`
	// +optional
	Prefix string `json:"prefix,omitempty"`
	// Host is the externally reachable URL used in Location headers.
	// +kubebuilder:validation:Pattern=`^https?://`
	// +optional
	Host string `json:"host,omitempty"`
	// RelativeURLs makes Location headers relative.
	// +optional
	RelativeURLs bool `json:"relativeURLs,omitempty"`
	// DrainTimeout is how long in-flight requests may finish on shutdown
	// (default 30s). Pods get it, plus 10s before SIGTERM to leave the
	// Service and 10s of margin, as their termination grace period.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	DrainTimeout *metav1.Duration `json:"drainTimeout,omitempty"`
	// Headers added to every response.
	// +optional
	Headers map[string][]string `json:"headers,omitempty"`
	// HTTP2Disabled turns HTTP/2 over TLS off.
	// +optional
	HTTP2Disabled bool `json:"http2Disabled,omitempty"`
	// H2C serves HTTP/2 over cleartext.
	// +optional
	H2C bool `json:"h2c,omitempty"`
}
