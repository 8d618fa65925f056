package controllers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/controllers/builders"
	"github.com/berth-dev/berth/registryd/configuration"
)

// problem is something the user must fix; it becomes Degraded's reason and
// message. Messages are stable (no timestamps), so writing them never
// triggers another reconcile.
type problem struct{ reason, message string }

// registryScope is what the phases of one reconcile share.
type registryScope struct {
	reg        *berthv1alpha1.Registry
	secrets    map[string]*corev1.Secret
	rendered   *builders.Rendered
	invalid    *builders.InvalidConfigError // why rendering refused the spec
	configMap  *corev1.ConfigMap
	deployment *appsv1.Deployment
	problem    *problem
	// activeRun holds (or takes or releases a hold on) the registry;
	// lastRun is the last finished run.
	activeRun, lastRun *berthv1alpha1.GarbageCollection
	// replicas are the running pods and what each reported.
	replicas []replica
}

// effectiveReadOnly is the read-only flag of the rendered config.yml: the
// spec's. A GarbageCollection holds the registry with its own hold file
// beside config.yml (see the GC controller), which expires by itself.
func effectiveReadOnly(reg *berthv1alpha1.Registry) bool { return reg.Spec.ReadOnly }

// checkSpec evaluates specPolicies: specs the API server accepted but
// the operator cannot honour (objects stored before a validation rule
// existed, a cron expression the CRD pattern lets through, a missing
// cert-manager).
func (r *RegistryReconciler) checkSpec(_ context.Context, s *registryScope) error {
	in := &policyInput{reg: s.reg}
	if t := s.reg.Spec.TLS; t != nil && t.IssuerRef != nil {
		gvk := builders.CertificateGVK
		ok, err := r.hasKind(gvk.Group, gvk.Version, gvk.Kind)
		if err != nil {
			return err
		}
		in.certificateCRD = ok
	}
	s.problem = specPolicies.evaluate(in)
	return nil
}

// hasKind reports whether the API server serves group/version kind.
func (r *RegistryReconciler) hasKind(group, version, kind string) (bool, error) {
	_, err := r.RESTMapper().RESTMapping(schema.GroupKind{Group: group, Kind: kind}, version)
	switch {
	case meta.IsNoMatchError(err):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// loadSecrets reads every Secret the spec references (nil when missing).
func (r *RegistryReconciler) loadSecrets(ctx context.Context, s *registryScope) error {
	for _, ref := range builders.SecretRefs(s.reg) {
		if _, ok := s.secrets[ref.Name]; ok {
			continue
		}
		sec := &corev1.Secret{}
		err := r.Get(ctx, client.ObjectKey{Namespace: s.reg.Namespace, Name: ref.Name}, sec)
		switch {
		case apierrors.IsNotFound(err):
			sec = nil
		case err != nil:
			return err
		}
		s.secrets[ref.Name] = sec
	}
	return nil
}

// render builds config.yml; a spec the renderer refuses is kept for
// configPolicies.
func (r *RegistryReconciler) render(_ context.Context, s *registryScope) error {
	rendered, err := builders.Render(s.reg, effectiveReadOnly(s.reg))
	var invalid *builders.InvalidConfigError
	switch {
	case errors.As(err, &invalid):
		s.invalid = invalid
		return nil
	case err != nil:
		return err
	}
	s.rendered = rendered
	return nil
}

// checkConfig evaluates configPolicies: a missing Secret or key, a config
// registryd refuses or does not implement yet. No child is written after
// a problem, so running pods keep their last good configuration.
func (r *RegistryReconciler) checkConfig(_ context.Context, s *registryScope) error {
	s.problem = configPolicies.evaluate(&policyInput{reg: s.reg, secrets: s.secrets,
		rendered: s.rendered, invalid: s.invalid, support: configuration.Implemented()})
	return nil
}

// reconcileHTTPSecret creates the http secret once. It is never updated:
// rotating it would break uploads in flight across replicas.
func (r *RegistryReconciler) reconcileHTTPSecret(ctx context.Context, s *registryScope) error {
	name := builders.HTTPSecretName(s.reg)
	err := r.Get(ctx, client.ObjectKey{Namespace: s.reg.Namespace, Name: name}, &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		return err
	}
	value := make([]byte, 32)
	if _, err := rand.Read(value); err != nil {
		return err
	}
	return r.children().create(ctx, s.reg, builders.HTTPSecret(s.reg, []byte(hex.EncodeToString(value))))
}

// reconcileHTPasswd hashes spec.auth.htpasswd.users into the generated
// Secret, keeping the hash of every password that did not change.
func (r *RegistryReconciler) reconcileHTPasswd(ctx context.Context, s *registryScope) error {
	a := s.reg.Spec.Auth
	if a == nil || a.Htpasswd == nil || len(a.Htpasswd.Users) == 0 {
		return nil
	}
	passwords := map[string][]byte{}
	for _, u := range a.Htpasswd.Users {
		passwords[u.Username] = s.secrets[u.PasswordSecretRef.Name].Data[u.PasswordSecretRef.Key]
	}
	current := &corev1.Secret{}
	err := r.Get(ctx, client.ObjectKey{Namespace: s.reg.Namespace, Name: builders.HTPasswdSecretName(s.reg)}, current)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	hasher := r.Hasher
	if hasher == nil {
		hasher = builders.BcryptHasher
	}
	file, err := builders.HTPasswd(a.Htpasswd.Users, passwords, current.Data[builders.HTPasswdSecretKey], hasher)
	if err != nil {
		s.problem = &problem{berthv1alpha1.ReasonInvalidConfig, "spec.auth.htpasswd.users: " + err.Error()}
		return nil //nolint:nilerr // the spec's error is reported in the status, not retried
	}
	_, err = r.children().ensure(ctx, s.reg, builders.HTPasswdSecret(s.reg, file))
	return err
}

func (r *RegistryReconciler) reconcileConfigMap(ctx context.Context, s *registryScope) error {
	live, err := r.children().ensure(ctx, s.reg, builders.ConfigMap(s.reg, s.rendered))
	if err != nil {
		return err
	}
	s.configMap = live.(*corev1.ConfigMap)
	return nil
}

func (r *RegistryReconciler) reconcilePVC(ctx context.Context, s *registryScope) error {
	if pvc := builders.PersistentVolumeClaim(s.reg); pvc != nil {
		_, err := r.children().ensure(ctx, s.reg, pvc)
		return err
	}
	return nil
}

func (r *RegistryReconciler) reconcileDeployment(ctx context.Context, s *registryScope) error {
	sum := builders.Checksum(s.rendered, builders.SecretRefs(s.reg), s.secrets)
	live, err := r.children().ensure(ctx, s.reg, builders.Deployment(s.reg, s.rendered, r.RegistrydImage, sum))
	if err != nil {
		return err
	}
	s.deployment = live.(*appsv1.Deployment)
	return nil
}

func (r *RegistryReconciler) reconcileService(ctx context.Context, s *registryScope) error {
	_, err := r.children().ensure(ctx, s.reg, builders.Service(s.reg))
	return err
}

func (r *RegistryReconciler) reconcilePDB(ctx context.Context, s *registryScope) error {
	if pdb := builders.PodDisruptionBudget(s.reg); pdb != nil {
		_, err := r.children().ensure(ctx, s.reg, pdb)
		return err
	}
	return r.children().deleteOwned(ctx, s.reg, &policyv1.PodDisruptionBudget{}, builders.PDBName(s.reg))
}

// reconcileServiceMonitor applies the ServiceMonitor when prometheus-operator's
// CRD exists; without the CRD there is nothing to do.
func (r *RegistryReconciler) reconcileServiceMonitor(ctx context.Context, s *registryScope) error {
	gvk := builders.ServiceMonitorGVK
	ok, err := r.hasKind(gvk.Group, gvk.Version, gvk.Kind)
	if err != nil || !ok {
		return err
	}
	if sm := builders.ServiceMonitor(s.reg); sm != nil {
		_, err := r.children().ensure(ctx, s.reg, sm)
		return err
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind})
	return r.children().deleteOwned(ctx, s.reg, u, s.reg.Name)
}

// reconcileCertificate applies the cert-manager Certificate (checkSpec
// made sure its CRD exists).
func (r *RegistryReconciler) reconcileCertificate(ctx context.Context, s *registryScope) error {
	if c := builders.Certificate(s.reg); c != nil {
		_, err := r.children().ensure(ctx, s.reg, c)
		return err
	}
	return nil
}
