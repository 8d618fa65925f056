package builders

import (
	"strconv"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/registryd/control"
)

// Ports and paths inside the registryd pod.
const (
	HTTPPort     int32 = 5000
	DebugPort    int32 = 5001
	HTTPPortName       = "http"
	// DebugPortName serves /debug/health and, with metrics on, /metrics.
	DebugPortName = "debug"

	ConfigDir  = "/etc/registryd/config"
	ConfigFile = "config.yml"
	// HoldFile is the garbage collection hold beside config.yml in the
	// ConfigMap (registryd/control.HoldFileName).
	HoldFile       = control.HoldFileName
	DataDir        = "/var/lib/registry"
	SecretsDir     = "/etc/registryd/secrets" //nolint:gosec // G101: a directory, not a credential
	ContainerName  = "registryd"
	DefaultService = 5000

	// RunAsUser is the uid registryd runs as (the distroless nonroot uid).
	RunAsUser int64 = 65532
)

// Annotations and labels the operator writes.
const (
	// ConfigChecksumAnnotation on the pod template rolls the pods when the
	// config or a Secret registryd cannot reload changes.
	ConfigChecksumAnnotation = "berth.dev/config-checksum"

	// Keys of the generated Secrets.
	HTTPSecretKey     = "secret"
	HTPasswdSecretKey = "htpasswd"
)

// Labels returns the labels of every child of reg.
func Labels(reg *berthv1alpha1.Registry) map[string]string {
	l := SelectorLabels(reg)
	l["app.kubernetes.io/managed-by"] = "berth"
	l["app.kubernetes.io/component"] = "registry"
	return l
}

// SelectorLabels select reg's pods.
func SelectorLabels(reg *berthv1alpha1.Registry) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":     "registryd",
		"app.kubernetes.io/instance": reg.Name,
	}
}

// Names of the children of a Registry.
func ConfigMapName(reg *berthv1alpha1.Registry) string  { return reg.Name + "-config" }
func HTTPSecretName(reg *berthv1alpha1.Registry) string { return reg.Name + "-http-secret" }
func HTPasswdSecretName(reg *berthv1alpha1.Registry) string {
	return reg.Name + "-htpasswd"
}
func DeploymentName(reg *berthv1alpha1.Registry) string { return reg.Name }
func ServiceName(reg *berthv1alpha1.Registry) string    { return reg.Name }
func PVCName(reg *berthv1alpha1.Registry) string        { return reg.Name + "-data" }
func PDBName(reg *berthv1alpha1.Registry) string        { return reg.Name }

// TLSSecretName is the kubernetes.io/tls Secret registryd serves with: the
// one named in the spec, or the one the cert-manager Certificate writes.
func TLSSecretName(reg *berthv1alpha1.Registry) string {
	if reg.Spec.TLS == nil {
		return ""
	}
	if reg.Spec.TLS.SecretName != "" {
		return reg.Spec.TLS.SecretName
	}
	return reg.Name + "-tls"
}

// StorageKind names the storage backend of reg, as status.storage shows it.
func StorageKind(reg *berthv1alpha1.Registry) string {
	s := reg.Spec.Storage
	switch {
	case s.Filesystem != nil:
		return "filesystem"
	case s.EmptyDir != nil:
		return "emptyDir"
	case s.InMemory != nil:
		return "inmemory"
	case s.S3 != nil:
		return "s3"
	case s.Azure != nil:
		return "azure"
	case s.GCS != nil:
		return "gcs"
	}
	return ""
}

// ServicePort is the port of reg's Service.
func ServicePort(reg *berthv1alpha1.Registry) int32 {
	if p := reg.Spec.Service.Port; p != 0 {
		return p
	}
	return DefaultService
}

// URL is where reg is reached inside the cluster.
func URL(reg *berthv1alpha1.Registry) string {
	scheme := "http"
	if reg.Spec.TLS != nil {
		scheme = "https"
	}
	host := ServiceName(reg) + "." + reg.Namespace + ".svc"
	prefix := ""
	if reg.Spec.HTTP != nil && reg.Spec.HTTP.Prefix != "" {
		prefix = reg.Spec.HTTP.Prefix
	}
	u := scheme + "://" + host
	if p := ServicePort(reg); !(scheme == "https" && p == 443) && !(scheme == "http" && p == 80) {
		u += ":" + strconv.Itoa(int(p))
	}
	return u + prefix
}
