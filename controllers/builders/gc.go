package builders

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/registryd/hold"
)

// Garbage collection children. A GarbageCollection run holds its Registry
// read-only through the hold file in the Registry's ConfigMap (HoldConfigMap,
// applied by the GC controller under its own field manager, so the Registry
// controller's apply of config.yml and the run's apply of hold.json never
// touch each other's keys), collects with a Job (CollectorJob) and reports
// through the Job pod's termination message. A schedule is a CronJob whose
// pod runs the manager's gc-trigger command, which creates a
// GarbageCollection (GCCronJob, with a ServiceAccount whose Role allows
// only that).

// Labels of garbage collection objects.
const (
	// GCRunLabel names the GarbageCollection a collector Job belongs to.
	GCRunLabel = "berth.dev/garbage-collection"
	// RegistryLabel names the Registry a GarbageCollection or collector
	// Job is for.
	RegistryLabel = "berth.dev/registry"
	// TriggerLabel on a GarbageCollection says who created it: "schedule"
	// for the CronJob's trigger.
	TriggerLabel = "berth.dev/trigger"
	// CollectorContainer is the collector Job's container.
	CollectorContainer = "garbage-collect"
	// TriggerContainer is the CronJob's container.
	TriggerContainer = "gc-trigger"
)

// Defaults of a garbage collection run, as the API defaults them.
const (
	DefaultGCTimeout     = time.Hour
	DefaultGCGracePeriod = time.Hour
	// Default history limits of finished runs per Registry.
	DefaultSuccessfulRunsHistoryLimit = 3
	DefaultFailedRunsHistoryLimit     = 1
)

// CollectorDeadlineMargin is how long before its hold expires the
// collector must have stopped deleting: the hold expiring makes replicas
// writable, and a write must never meet a sweep. It covers the clock skew
// between the manager and the node and one storage call in flight.
// (registryd garbage-collect keeps its own margin to the hold file's
// expiry as well.)
const CollectorDeadlineMargin = 15 * time.Second

// maxNameLength is what a name carried in a label value may have.
const maxNameLength = 63

// boundedName is base+suffix, shortened with a hash of base when longer
// than max.
func boundedName(base, suffix string, max int) string {
	if len(base)+len(suffix) <= max {
		return base + suffix
	}
	sum := sha256.Sum256([]byte(base))
	h := hex.EncodeToString(sum[:])[:8]
	keep := max - len(suffix) - len(h) - 1
	return base[:keep] + "-" + h + suffix
}

// CollectorJobName is the Job of run gc.
func CollectorJobName(gc *berthv1alpha1.GarbageCollection) string {
	return boundedName(gc.Name, "-collect", maxNameLength)
}

// GCCronJobName is the CronJob of reg's schedule. A CronJob's name must
// leave room for the 11 characters its Jobs append.
func GCCronJobName(reg *berthv1alpha1.Registry) string {
	return boundedName(reg.Name, "-gc", 52)
}

// GCTriggerName names the ServiceAccount, Role and RoleBinding of reg's
// schedule.
func GCTriggerName(reg *berthv1alpha1.Registry) string {
	return boundedName(reg.Name, "-gc-trigger", 253)
}

// StorageHash fingerprints reg's storage spec: a run fails when it changes
// under it.
func StorageHash(reg *berthv1alpha1.Registry) string {
	data, _ := json.Marshal(reg.Spec.Storage)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:12])
}

// Collectable reports whether a Job can reach reg's storage: emptyDir and
// inmemory storage live inside the registryd pod. It returns the field to
// name when it cannot.
func Collectable(reg *berthv1alpha1.Registry) (bool, string) {
	switch {
	case reg.Spec.Storage.EmptyDir != nil:
		return false, "spec.storage.emptyDir"
	case reg.Spec.Storage.InMemory != nil:
		return false, "spec.storage.inmemory"
	}
	return true, ""
}

// HoldConfigMap is the part of reg's ConfigMap a run applies: hold.json
// when hold is non-nil, nothing (which removes the run's key) when nil.
// The owner reference is the caller's (the same controller reference the
// Registry controller sets), so an apply that races the Registry's deletion
// creates nothing that outlives it.
func HoldConfigMap(reg *berthv1alpha1.Registry, h *hold.Hold) (*corev1.ConfigMap, error) {
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName(reg), Namespace: reg.Namespace},
	}
	if h != nil {
		data, err := h.Marshal()
		if err != nil {
			return nil, err
		}
		cm.Data = map[string]string{HoldFile: string(data)}
	}
	return cm, nil
}

// CollectorJob runs `registryd garbage-collect` for run gc against reg's
// storage: the pod is the Deployment's pod (config, credentials, volume,
// security context) with the collector's arguments. It proves the hold
// (hold file and run UID) and stops deleting at deadline. A run with
// retention rules mounts them from RetentionConfigMap. nodeName, when
// set, pins the pod to the node where reg's ReadWriteOnce volume is
// mounted.
func CollectorJob(reg *berthv1alpha1.Registry, gc *berthv1alpha1.GarbageCollection, rendered *Rendered, image, nodeName string, deadline time.Time, now time.Time) *batchv1.Job {
	pod := registrydPod(reg, rendered, image)
	pod.RestartPolicy = corev1.RestartPolicyNever
	c := &pod.Containers[0]
	c.Name = CollectorContainer
	grace := DefaultGCGracePeriod
	if gc.Spec.GracePeriod != nil {
		grace = gc.Spec.GracePeriod.Duration
	}
	c.Args = []string{"garbage-collect", "--json",
		"--hold-file", ConfigDir + "/" + HoldFile, "--hold-id", string(gc.UID),
		"--deadline", deadline.UTC().Format(time.RFC3339),
		"--grace-period", grace.String(),
	}
	if gc.Spec.DryRun {
		c.Args = append(c.Args, "--dry-run")
	}
	if gc.Spec.DeleteUntagged {
		c.Args = append(c.Args, "--delete-untagged")
	}
	if len(gc.Spec.Retention) > 0 {
		c.Args = append(c.Args, "--retention-policy", RetentionDir+"/"+RetentionFile)
		pod.Volumes = append(pod.Volumes, corev1.Volume{Name: "retention", VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: RetentionConfigMapName(gc)}},
		}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "retention", MountPath: RetentionDir, ReadOnly: true})
	}
	c.Args = append(c.Args, ConfigDir+"/"+ConfigFile)
	c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	if nodeName != "" {
		pod.Affinity = pinToNode(pod.Affinity, nodeName)
	}
	labels := gcLabels(reg)
	labels[GCRunLabel] = boundedName(gc.Name, "", maxNameLength)
	// The Job controller kills the pod at the deadline too; the
	// collector's own deadline is what guarantees no deletion after it.
	active := int64(deadline.Sub(now).Seconds())
	if active < 1 {
		active = 1
	}
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{Name: CollectorJobName(gc), Namespace: gc.Namespace, Labels: labels},
		Spec: batchv1.JobSpec{
			// A failed collector fails the run: its partial work is safe and a
			// new run finishes it, under a new hold.
			BackoffLimit:          ptr.To[int32](0),
			ActiveDeadlineSeconds: ptr.To(active),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       pod,
			},
		},
	}
}

// gcLabels label the garbage collection objects of reg. They must not
// match SelectorLabels: the Service would send clients to a collector pod.
func gcLabels(reg *berthv1alpha1.Registry) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":       "registryd-garbage-collection",
		"app.kubernetes.io/instance":   boundedName(reg.Name, "", maxNameLength),
		"app.kubernetes.io/managed-by": "berth",
		"app.kubernetes.io/component":  "garbage-collection",
		RegistryLabel:                  boundedName(reg.Name, "", maxNameLength),
	}
}

// pinToNode adds a required node affinity to nodeName to a (copy of)
// affinity.
func pinToNode(affinity *corev1.Affinity, nodeName string) *corev1.Affinity {
	out := &corev1.Affinity{}
	if affinity != nil {
		out = affinity.DeepCopy()
	}
	term := corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{{
		Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{nodeName},
	}}}
	if out.NodeAffinity == nil {
		out.NodeAffinity = &corev1.NodeAffinity{}
	}
	req := out.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	if req == nil || len(req.NodeSelectorTerms) == 0 {
		out.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{term}}
		return out
	}
	// Terms are ORed: the node must satisfy the spec's terms and be this
	// node, so add the requirement to every term.
	for i := range req.NodeSelectorTerms {
		req.NodeSelectorTerms[i].MatchFields = append(req.NodeSelectorTerms[i].MatchFields, term.MatchFields...)
	}
	return out
}

// TriggerArgs are the gc-trigger arguments for reg's scheduled runs.
func TriggerArgs(reg *berthv1alpha1.Registry) []string {
	p := reg.Spec.GarbageCollection
	timeout, grace := DefaultGCTimeout, DefaultGCGracePeriod
	if p.Timeout != nil {
		timeout = p.Timeout.Duration
	}
	if p.GracePeriod != nil {
		grace = p.GracePeriod.Duration
	}
	return []string{"gc-trigger",
		"--registry", reg.Name,
		"--delete-untagged=" + strconv.FormatBool(p.DeleteUntagged),
		"--dry-run=" + strconv.FormatBool(p.DryRun),
		"--timeout", timeout.String(),
		"--grace-period", grace.String(),
	}
}

// Environment of the trigger pod: its namespace, and the name of its Job,
// which becomes the GarbageCollection's name (so a retried trigger pod
// creates the same run once).
const (
	TriggerEnvNamespace = "POD_NAMESPACE"
	TriggerEnvJobName   = "JOB_NAME"
)

// GCCronJob creates reg's scheduled runs; nil when reg has no schedule.
// managerImage is the manager's own image, whose gc-trigger command
// creates the GarbageCollection.
func GCCronJob(reg *berthv1alpha1.Registry, managerImage string) *batchv1.CronJob {
	p := reg.Spec.GarbageCollection
	if p == nil || p.Schedule == "" {
		return nil
	}
	fieldEnv := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	container := corev1.Container{
		Name:  TriggerContainer,
		Image: managerImage,
		Args:  TriggerArgs(reg),
		Env: []corev1.EnvVar{
			fieldEnv(TriggerEnvNamespace, "metadata.namespace"),
			fieldEnv(TriggerEnvJobName, "metadata.labels['batch.kubernetes.io/job-name']"),
		},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		SecurityContext:          restrictedContainer(),
	}
	labels := gcLabels(reg)
	return &batchv1.CronJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: metav1.ObjectMeta{Name: GCCronJobName(reg), Namespace: reg.Namespace, Labels: labels},
		Spec: batchv1.CronJobSpec{
			Schedule: p.Schedule,
			Suspend:  ptr.To(p.Suspend),
			// One trigger at a time; the runs themselves queue per Registry.
			ConcurrencyPolicy: batchv1.ForbidConcurrent,
			// A schedule missed by more than this (the controller was down)
			// is skipped, not caught up in a burst.
			StartingDeadlineSeconds:    ptr.To[int64](300),
			SuccessfulJobsHistoryLimit: ptr.To[int32](1),
			FailedJobsHistoryLimit:     ptr.To[int32](1),
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: batchv1.JobSpec{
					BackoffLimit:          ptr.To[int32](3),
					ActiveDeadlineSeconds: ptr.To[int64](300),
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: labels},
						Spec: corev1.PodSpec{
							ServiceAccountName: GCTriggerName(reg),
							RestartPolicy:      corev1.RestartPolicyNever,
							Containers:         []corev1.Container{container},
							NodeSelector:       reg.Spec.NodeSelector,
							Tolerations:        reg.Spec.Tolerations,
							ImagePullSecrets:   reg.Spec.ImagePullSecrets,
							SecurityContext: &corev1.PodSecurityContext{
								RunAsNonRoot:   ptr.To(true),
								RunAsUser:      ptr.To(RunAsUser),
								RunAsGroup:     ptr.To(RunAsUser),
								SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
							},
						},
					},
				},
			},
		},
	}
}

// GCTriggerServiceAccount is the identity of reg's trigger pods.
func GCTriggerServiceAccount(reg *berthv1alpha1.Registry) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: meta(reg, GCTriggerName(reg)),
	}
}

// GCTriggerRole allows creating GarbageCollections in reg's namespace and
// reading reg itself (the trigger copies its retention rules into the run),
// nothing else: not even reading runs (a retried trigger learns that its
// run exists from the AlreadyExists answer) or other Registries.
func GCTriggerRole(reg *berthv1alpha1.Registry) *rbacv1.Role {
	return &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: meta(reg, GCTriggerName(reg)),
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{berthv1alpha1.GroupVersion.Group},
			Resources: []string{"garbagecollections"},
			Verbs:     []string{"create"},
		}, {
			APIGroups:     []string{berthv1alpha1.GroupVersion.Group},
			Resources:     []string{"registries"},
			ResourceNames: []string{reg.Name},
			Verbs:         []string{"get"},
		}},
	}
}

// GCTriggerRoleBinding binds GCTriggerRole to GCTriggerServiceAccount.
func GCTriggerRoleBinding(reg *berthv1alpha1.Registry) *rbacv1.RoleBinding {
	name := GCTriggerName(reg)
	return &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: meta(reg, name),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: reg.Namespace}},
	}
}

// HumanBytes renders n bytes for people: "0 B", "512 B", "1.5 KiB", "12.3 MiB".
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
