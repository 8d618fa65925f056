package builders

import (
	"fmt"
	"maps"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
)

// ConfigMap carries reg's rendered config.yml.
func ConfigMap(reg *berthv1alpha1.Registry, rendered *Rendered) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: meta(reg, ConfigMapName(reg)),
		Data:       map[string]string{ConfigFile: string(rendered.Config)},
	}
}

// Replicas is the desired number of registryd pods.
func Replicas(reg *berthv1alpha1.Registry) int32 {
	if reg.Spec.Replicas == nil {
		return 1
	}
	return *reg.Spec.Replicas
}

// ReadWriteOnce reports whether reg's storage is a volume only one node
// can mount read-write: one replica, and pods replaced with Recreate.
func ReadWriteOnce(reg *berthv1alpha1.Registry) bool {
	fs := reg.Spec.Storage.Filesystem
	if fs == nil {
		return false
	}
	modes := fs.AccessModes
	if len(modes) == 0 {
		return true
	}
	return !slices.Contains(modes, corev1.ReadWriteMany)
}

// PreStopDelay is how long a terminating registryd pod keeps serving
// before SIGTERM, so that it leaves the Service's endpoints before it
// stops accepting connections: what keeps a rolling update from failing
// requests.
const PreStopDelay = 10 * time.Second

// DefaultDrainTimeout is http.draintimeout when spec.http.drainTimeout is
// unset: how long registryd lets in-flight requests (a large layer's pull
// or push) finish after SIGTERM.
const DefaultDrainTimeout = 30 * time.Second

// DrainTimeout is reg's drain: spec.http.drainTimeout, else
// DefaultDrainTimeout.
func DrainTimeout(reg *berthv1alpha1.Registry) time.Duration {
	if h := reg.Spec.HTTP; h != nil && h.DrainTimeout != nil {
		return h.DrainTimeout.Duration
	}
	return DefaultDrainTimeout
}

// Deployment runs registryd for reg. image is the manager's registryd
// image, used unless the spec overrides it; checksum is Checksum's result.
func Deployment(reg *berthv1alpha1.Registry, rendered *Rendered, image, checksum string) *appsv1.Deployment {
	spec := &reg.Spec
	podAnnotations := maps.Clone(spec.PodAnnotations)
	if podAnnotations == nil {
		podAnnotations = map[string]string{}
	}
	podAnnotations[ConfigChecksumAnnotation] = checksum

	scheme := corev1.URISchemeHTTP
	probe := func(period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: "/debug/health", Port: intstr.FromString(DebugPortName), Scheme: scheme,
			}},
			PeriodSeconds: period, FailureThreshold: failures, TimeoutSeconds: 5,
		}
	}
	liveness := &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString(HTTPPortName)}},
		PeriodSeconds: 10, FailureThreshold: 6, TimeoutSeconds: 5,
	}

	pod := registrydPod(reg, rendered, image)
	c := &pod.Containers[0]
	c.Name = ContainerName
	// The hold file is watched like config.yml: a garbage collection's
	// hold reaches a running pod without a restart, and a pod that starts
	// during a run starts read-only.
	c.Args = []string{"serve", "--hold-file", ConfigDir + "/" + HoldFile, ConfigDir + "/" + ConfigFile}
	c.Ports = []corev1.ContainerPort{
		{Name: HTTPPortName, ContainerPort: HTTPPort, Protocol: corev1.ProtocolTCP},
		{Name: DebugPortName, ContainerPort: DebugPort, Protocol: corev1.ProtocolTCP},
	}
	c.StartupProbe, c.ReadinessProbe, c.LivenessProbe = probe(2, 30), probe(5, 3), liveness

	// A terminating pod first waits PreStopDelay, serving as before,
	// while its endpoint leaves every Service (kube-proxy and clients
	// that resolved it earlier stop sending it new connections); then
	// SIGTERM starts registryd's drain; SIGKILL comes 10 s after both.
	c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
		Sleep: &corev1.SleepAction{Seconds: int64(PreStopDelay.Seconds())},
	}}
	pod.TerminationGracePeriodSeconds = ptr.To(int64((PreStopDelay + DrainTimeout(reg)).Seconds()) + 10)

	strategy := appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType}
	if ReadWriteOnce(reg) {
		strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	}

	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: meta(reg, DeploymentName(reg)),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(Replicas(reg)),
			Selector: &metav1.LabelSelector{MatchLabels: SelectorLabels(reg)},
			Strategy: strategy,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: Labels(reg), Annotations: podAnnotations},
				Spec:       pod,
			},
		},
	}
}

// RegistrydImage is the registryd image reg runs: spec.image, else the
// manager's default.
func RegistrydImage(reg *berthv1alpha1.Registry, defaultImage string) string {
	if reg.Spec.Image != "" {
		return reg.Spec.Image
	}
	return defaultImage
}

// registrydPod is the pod spec every registryd process of reg runs in —
// the Deployment's pods and the garbage collector's Job: one container
// with the image, the config directory, the storage volume, the
// credentials, /tmp and the security context. Name, args, ports and probes
// are the caller's.
func registrydPod(reg *berthv1alpha1.Registry, rendered *Rendered, image string) corev1.PodSpec {
	spec := &reg.Spec
	volumes := []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: ConfigMapName(reg)}},
	}}}
	mounts := []corev1.VolumeMount{{Name: "config", MountPath: ConfigDir, ReadOnly: true}}
	if v := dataVolume(reg); v != nil {
		volumes = append(volumes, *v)
		mounts = append(mounts, corev1.VolumeMount{Name: "data", MountPath: DataDir})
	}
	volumes = append(volumes, corev1.Volume{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	mounts = append(mounts, corev1.VolumeMount{Name: "tmp", MountPath: "/tmp"})
	volumes = append(volumes, rendered.Volumes...)
	mounts = append(mounts, rendered.Mounts...)

	container := corev1.Container{
		Image:           RegistrydImage(reg, image),
		ImagePullPolicy: spec.ImagePullPolicy,
		Env:             rendered.Env,
		Resources:       spec.Resources,
		VolumeMounts:    mounts,
		SecurityContext: restrictedContainer(),
	}
	return corev1.PodSpec{
		Containers:                   []corev1.Container{container},
		Volumes:                      volumes,
		NodeSelector:                 spec.NodeSelector,
		Tolerations:                  spec.Tolerations,
		Affinity:                     spec.Affinity,
		ImagePullSecrets:             spec.ImagePullSecrets,
		AutomountServiceAccountToken: ptr.To(false),
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr.To(true),
			RunAsUser:      ptr.To(RunAsUser),
			RunAsGroup:     ptr.To(RunAsUser),
			FSGroup:        ptr.To(RunAsUser),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
}

// restrictedContainer is the security context of every container the
// operator runs: non-root, no privilege escalation, a read-only root
// filesystem, no capabilities, the runtime's seccomp profile.
func restrictedContainer() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

func dataVolume(reg *berthv1alpha1.Registry) *corev1.Volume {
	s := &reg.Spec.Storage
	switch {
	case s.Filesystem != nil:
		return &corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: PVCName(reg)},
		}}
	case s.EmptyDir != nil:
		return &corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{
			EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: s.EmptyDir.SizeLimit},
		}}
	}
	return nil
}

// Service exposes reg's registry port (and its debug port, for scraping).
func Service(reg *berthv1alpha1.Registry) *corev1.Service {
	svc := reg.Spec.Service
	typ := svc.Type
	if typ == "" {
		typ = corev1.ServiceTypeClusterIP
	}
	m := meta(reg, ServiceName(reg))
	m.Annotations = svc.Annotations
	port := corev1.ServicePort{Name: HTTPPortName, Port: ServicePort(reg), TargetPort: intstr.FromString(HTTPPortName), Protocol: corev1.ProtocolTCP}
	if typ != corev1.ServiceTypeClusterIP {
		port.NodePort = svc.NodePort
	}
	ports := []corev1.ServicePort{port}
	if reg.Spec.Metrics != nil && reg.Spec.Metrics.Enabled {
		ports = append(ports, corev1.ServicePort{Name: DebugPortName, Port: DebugPort, TargetPort: intstr.FromString(DebugPortName), Protocol: corev1.ProtocolTCP})
	}
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: m,
		Spec:       corev1.ServiceSpec{Type: typ, Selector: SelectorLabels(reg), Ports: ports},
	}
}

// PersistentVolumeClaim holds reg's filesystem storage; nil for other kinds.
func PersistentVolumeClaim(reg *berthv1alpha1.Registry) *corev1.PersistentVolumeClaim {
	fs := reg.Spec.Storage.Filesystem
	if fs == nil {
		return nil
	}
	size := resource.MustParse("10Gi")
	if fs.Size != nil {
		size = *fs.Size
	}
	modes := fs.AccessModes
	if len(modes) == 0 {
		modes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	}
	return &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: meta(reg, PVCName(reg)),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      modes,
			StorageClassName: fs.StorageClassName,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
		},
	}
}

// PodDisruptionBudget keeps one registryd pod serving through voluntary
// disruptions; nil unless reg runs more than one replica.
func PodDisruptionBudget(reg *berthv1alpha1.Registry) *policyv1.PodDisruptionBudget {
	if Replicas(reg) <= 1 {
		return nil
	}
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: meta(reg, PDBName(reg)),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			Selector:       &metav1.LabelSelector{MatchLabels: SelectorLabels(reg)},
		},
	}
}

// ServiceMonitorGVK is prometheus-operator's ServiceMonitor.
var ServiceMonitorGVK = struct{ Group, Version, Kind string }{"monitoring.coreos.com", "v1", "ServiceMonitor"}

// ServiceMonitor scrapes reg's metrics; nil unless metrics and the
// ServiceMonitor are enabled. It is unstructured: the operator does not
// depend on prometheus-operator's Go types.
func ServiceMonitor(reg *berthv1alpha1.Registry) *unstructured.Unstructured {
	m := reg.Spec.Metrics
	if m == nil || !m.Enabled || m.ServiceMonitor == nil || !m.ServiceMonitor.Enabled {
		return nil
	}
	labels := Labels(reg)
	for k, v := range m.ServiceMonitor.Labels {
		labels[k] = v
	}
	endpoint := map[string]any{"port": DebugPortName, "path": "/metrics"}
	if m.ServiceMonitor.Interval != "" {
		endpoint["interval"] = m.ServiceMonitor.Interval
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": ServiceMonitorGVK.Group + "/" + ServiceMonitorGVK.Version,
		"kind":       ServiceMonitorGVK.Kind,
		"metadata": map[string]any{
			"name": reg.Name, "namespace": reg.Namespace, "labels": toAny(labels),
		},
		"spec": map[string]any{
			"selector":  map[string]any{"matchLabels": toAny(SelectorLabels(reg))},
			"endpoints": []any{endpoint},
		},
	}}
	return u
}

// CertificateGVK is cert-manager's Certificate.
var CertificateGVK = struct{ Group, Version, Kind string }{"cert-manager.io", "v1", "Certificate"}

// Certificate has cert-manager issue reg's serving certificate into
// TLSSecretName; nil unless spec.tls.issuerRef is set.
func Certificate(reg *berthv1alpha1.Registry) *unstructured.Unstructured {
	t := reg.Spec.TLS
	if t == nil || t.IssuerRef == nil {
		return nil
	}
	svc := ServiceName(reg)
	dns := []any{svc, fmt.Sprintf("%s.%s", svc, reg.Namespace), fmt.Sprintf("%s.%s.svc", svc, reg.Namespace), fmt.Sprintf("%s.%s.svc.cluster.local", svc, reg.Namespace)}
	for _, d := range t.DNSNames {
		dns = append(dns, d)
	}
	kind, group := t.IssuerRef.Kind, t.IssuerRef.Group
	if kind == "" {
		kind = "Issuer"
	}
	if group == "" {
		group = "cert-manager.io"
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": CertificateGVK.Group + "/" + CertificateGVK.Version,
		"kind":       CertificateGVK.Kind,
		"metadata":   map[string]any{"name": reg.Name, "namespace": reg.Namespace, "labels": toAny(Labels(reg))},
		"spec": map[string]any{
			"secretName": TLSSecretName(reg),
			"dnsNames":   dns,
			"issuerRef":  map[string]any{"name": t.IssuerRef.Name, "kind": kind, "group": group},
		},
	}}
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
