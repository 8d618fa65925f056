package v1alpha1

// RegistryAuth selects at most one access controller.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.htpasswd) && has(self.token))",message="spec.auth: set at most one of htpasswd and token"
type RegistryAuth struct {
	// htpasswd checks basic credentials against a bcrypt htpasswd file.
	// +optional
	Htpasswd *HtpasswdAuth `json:"htpasswd,omitempty"`
	// token checks bearer tokens issued by an external token service.
	// +optional
	Token *TokenAuth `json:"token,omitempty"`
}

// HtpasswdAuth is htpasswd authentication, from an existing htpasswd Secret
// or from users whose passwords live in Secrets (the operator hashes them
// with bcrypt into a generated Secret).
//
// +kubebuilder:validation:XValidation:rule="has(self.secretRef) != (has(self.users) && size(self.users) > 0)",message="spec.auth.htpasswd: set exactly one of secretRef and users"
type HtpasswdAuth struct {
	// realm of the basic auth challenge.
	// +kubebuilder:default="Registry"
	// +kubebuilder:validation:MinLength=1
	// +optional
	Realm string `json:"realm,omitempty"`
	// secretRef is an existing htpasswd file (bcrypt entries).
	// +optional
	SecretRef *SecretKeyRef `json:"secretRef,omitempty"`
	// users are hashed into a generated htpasswd Secret.
	// +listType=map
	// +listMapKey=username
	// +kubebuilder:validation:MaxItems=256
	// +optional
	Users []HtpasswdUser `json:"users,omitempty"`
}

// HtpasswdUser is one user of a generated htpasswd file.
type HtpasswdUser struct {
	// username; no colon.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:Pattern=`^[^:\s]+$`
	// +required
	Username string `json:"username"`
	// passwordSecretRef is the user's clear-text password.
	// +required
	PasswordSecretRef SecretKeyRef `json:"passwordSecretRef"`
}

// TokenAuth checks bearer JWTs from an external token service.
//
// +kubebuilder:validation:XValidation:rule="has(self.rootCertBundleSecretRef) || has(self.jwksSecretRef)",message="spec.auth.token: set rootCertBundleSecretRef or jwksSecretRef"
type TokenAuth struct {
	// realm is the token service URL clients are sent to.
	// +kubebuilder:validation:Pattern=`^https?://`
	// +required
	Realm string `json:"realm"`
	// service is the audience tokens must name.
	// +kubebuilder:validation:MinLength=1
	// +required
	Service string `json:"service"`
	// issuer tokens must name.
	// +kubebuilder:validation:MinLength=1
	// +required
	Issuer string `json:"issuer"`
	// rootCertBundleSecretRef holds the PEM certificates that sign tokens.
	// +optional
	RootCertBundleSecretRef *SecretKeyRef `json:"rootCertBundleSecretRef,omitempty"`
	// jwksSecretRef holds the JSON Web Key Set that signs tokens.
	// +optional
	JWKSSecretRef *SecretKeyRef `json:"jwksSecretRef,omitempty"`
	// signingAlgorithms accepted; all of registryd's when empty.
	// +optional
	SigningAlgorithms []string `json:"signingAlgorithms,omitempty"`
}

// RegistryTLS serves HTTPS.
//
// +kubebuilder:validation:XValidation:rule="has(self.secretName) || has(self.issuerRef)",message="spec.tls: set secretName or issuerRef"
type RegistryTLS struct {
	// secretName is a kubernetes.io/tls Secret (tls.crt, tls.key). With
	// issuerRef it is the Secret the cert-manager Certificate writes
	// (default <registry>-tls).
	// +kubebuilder:validation:MinLength=1
	// +optional
	SecretName string `json:"secretName,omitempty"`
	// issuerRef has cert-manager issue the certificate. Only used when the
	// cert-manager CRDs exist; otherwise the Registry is Degraded.
	// +optional
	IssuerRef *IssuerRef `json:"issuerRef,omitempty"`
	// dnsNames of the cert-manager certificate, in addition to the Service's
	// cluster names.
	// +optional
	DNSNames []string `json:"dnsNames,omitempty"`
	// clientCASecretRef is a PEM bundle of CAs for client certificates
	// (mutual TLS).
	// +optional
	ClientCASecretRef *SecretKeyRef `json:"clientCASecretRef,omitempty"`
	// clientAuth is the client certificate policy when clientCASecretRef is
	// set (default require-and-verify-client-cert).
	// +kubebuilder:validation:Enum=request-client-cert;require-any-client-cert;verify-client-cert-if-given;require-and-verify-client-cert
	// +optional
	ClientAuth string `json:"clientAuth,omitempty"`
	// minimumVersion of TLS (default tls1.2).
	// +kubebuilder:validation:Enum=tls1.2;tls1.3
	// +optional
	MinimumVersion string `json:"minimumVersion,omitempty"`
	// cipherSuites allowed (TLS 1.2 names as Go spells them).
	// +optional
	CipherSuites []string `json:"cipherSuites,omitempty"`
}

// IssuerRef names a cert-manager issuer.
type IssuerRef struct {
	// name of the issuer.
	// +kubebuilder:validation:MinLength=1
	// +required
	Name string `json:"name"`
	// kind is Issuer or ClusterIssuer.
	// +kubebuilder:default=Issuer
	// +kubebuilder:validation:Enum=Issuer;ClusterIssuer
	// +optional
	Kind string `json:"kind,omitempty"`
	// group of the issuer.
	// +kubebuilder:default="cert-manager.io"
	// +optional
	Group string `json:"group,omitempty"`
}

// RegistryHTTP are options of the HTTP server.
type RegistryHTTP struct {
	// prefix before /v2/, starting and ending with "/".
	// +kubebuilder:validation:Pattern=`^/(.*/)?$`
	// +optional
	Prefix string `json:"prefix,omitempty"`
	// host is the externally reachable URL used in Location headers.
	// +kubebuilder:validation:Pattern=`^https?://`
	// +optional
	Host string `json:"host,omitempty"`
	// relativeURLs makes Location headers relative.
	// +optional
	RelativeURLs bool `json:"relativeURLs,omitempty"`
	// drainTimeout is how long in-flight requests may finish on shutdown
	// (default 30s). Pods get it, plus 10s before SIGTERM to leave the
	// Service and 10s of margin, as their termination grace period.
	// +optional
	DrainTimeout *Duration `json:"drainTimeout,omitempty"`
	// headers added to every response.
	// +optional
	Headers map[string][]string `json:"headers,omitempty"`
	// http2Disabled turns HTTP/2 over TLS off.
	// +optional
	HTTP2Disabled bool `json:"http2Disabled,omitempty"`
	// h2c serves HTTP/2 over cleartext.
	// +optional
	H2C bool `json:"h2c,omitempty"`
}
