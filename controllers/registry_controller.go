package controllers

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/controllers/builders"
)

// FieldOwner is the server-side apply field manager of everything the
// operator writes.
const FieldOwner = client.FieldOwner("berth-operator")

// secretNamesIndex indexes Registries by the names of the Secrets they
// reference, so a Secret event finds its Registries.
const secretNamesIndex = ".spec.secretNames"

// RegistryReconciler reconciles a Registry into registryd's children.
type RegistryReconciler struct {
	client.Client

	// RegistrydImage is the registryd image used when a Registry does not
	// override it (the manager's --registryd-image flag / REGISTRYD_IMAGE).
	RegistrydImage string

	// Hasher hashes htpasswd passwords; bcrypt when nil.
	Hasher builders.Hasher

	// ManagerImage is the manager's own image, which the garbage
	// collection CronJob runs (--manager-image / MANAGER_IMAGE).
	ManagerImage string

	// APIReader lists pods without the cache (the manager caches no pods);
	// the client when nil.
	APIReader client.Reader

	// Prober asks replicas what they do, for the ReadOnly condition; when
	// nil, the condition follows the spec and the runs.
	Prober ReplicaProber
}

// The manager's RBAC is the minimum its controllers use: rbac_test.go
// fails on a grant no request of the suite makes unless it names the code
// path that needs it. The manager's client reads typed objects from its
// informers (list, watch) and writes children by server-side apply
// (patch, which creates a missing object: create); the cert-manager and
// prometheus-operator kinds are unstructured, which it reads directly
// (get).
//
// Registries: read from the cache; get too because the Role of the
// garbage collection trigger grants it (RBAC lets the manager grant only
// what it holds). finalizers/update: children carry a controller
// reference with blockOwnerDeletion, which clusters running the
// OwnerReferencesPermissionEnforcement admission plugin (OpenShift) allow
// only to who may update the owner's finalizers.
// +kubebuilder:rbac:groups=berth.dev,resources=registries,verbs=get;list;watch
// +kubebuilder:rbac:groups=berth.dev,resources=registries/status,verbs=patch
// +kubebuilder:rbac:groups=berth.dev,resources=registries/finalizers,verbs=update
//
// Children: applied, never updated; deleted only where a spec change
// removes them (deleteOwned). The http secret is created once.
// +kubebuilder:rbac:groups="",resources=configmaps;services;persistentvolumeclaims;secrets,verbs=list;watch;create;patch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=list;watch;create;patch
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=list;watch;create;patch;delete
// +kubebuilder:rbac:groups=batch,resources=cronjobs,verbs=list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=list;watch;create;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=list;watch;create;patch;delete
// +kubebuilder:rbac:groups=monitoring.coreos.com,resources=servicemonitors,verbs=get;create;patch;delete
// +kubebuilder:rbac:groups=cert-manager.io,resources=certificates,verbs=get;create;patch
//
// Pods: listed without the cache (listReplicas) and nudged (nudgePods).
// +kubebuilder:rbac:groups="",resources=pods,verbs=list;patch
//
// GarbageCollections: the status reports the runs (loadRuns); create
// because the trigger Role grants it.
// +kubebuilder:rbac:groups=berth.dev,resources=garbagecollections,verbs=list;watch;create

// Reconcile renders a Registry's children, applies them, and reports
// status. The phases share a registryScope; the check phases evaluate the
// policy chains of registry_policies.go, and a problem the user must fix
// (a missing Secret, a config registryd refuses or does not implement
// yet) recorded in the scope stops the remaining phases, which leave the
// running registry as it is, so it keeps serving its last good
// configuration.
func (r *RegistryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	reg := &berthv1alpha1.Registry{}
	if err := r.Get(ctx, req.NamespacedName, reg); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !reg.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	log.FromContext(ctx).V(1).Info("Reconciling Registry", "generation", reg.Generation)

	s := &registryScope{reg: reg, secrets: map[string]*corev1.Secret{}}
	phases := []func(context.Context, *registryScope) error{
		r.checkSpec,
		r.reconcileCertificate,
		r.loadSecrets,
		r.render,
		r.checkConfig,
		r.reconcileHTTPSecret,
		r.reconcileHTPasswd,
		r.reconcileConfigMap,
		r.reconcilePVC,
		r.reconcileDeployment,
		r.reconcileService,
		r.reconcilePDB,
		r.reconcileServiceMonitor,
		r.reconcileGCSchedule,
	}
	for _, phase := range phases {
		if s.problem != nil {
			break
		}
		if err := phase(ctx, s); err != nil {
			return ctrl.Result{}, err
		}
	}
	for _, phase := range []func(context.Context, *registryScope) error{r.loadDeployment, r.loadRuns, r.observeReplicas} {
		if err := phase(ctx, s); err != nil {
			return ctrl.Result{}, err
		}
	}
	return requeueForReplicas(s), r.patchStatus(ctx, s)
}

// SetupWithManager registers the reconciler with the manager: it owns the
// children and watches the Secrets Registries reference.
func (r *RegistryReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &berthv1alpha1.Registry{}, secretNamesIndex,
		func(o client.Object) []string { return builders.SecretNames(o.(*berthv1alpha1.Registry)) }); err != nil {
		return fmt.Errorf("indexing Registries by Secret: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&berthv1alpha1.Registry{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&corev1.Secret{}).
		Owns(&corev1.Service{}).
		Owns(&corev1.PersistentVolumeClaim{}).
		Owns(&appsv1.Deployment{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Owns(&batchv1.CronJob{}).
		Owns(&corev1.ServiceAccount{}).
		Owns(&rbacv1.Role{}).
		Owns(&rbacv1.RoleBinding{}).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.registriesForSecret)).
		Watches(&berthv1alpha1.GarbageCollection{}, handler.EnqueueRequestsFromMapFunc(r.registriesForRun)).
		Named("registry").
		Complete(r)
}

// registriesForSecret maps a Secret to the Registries that reference it.
func (r *RegistryReconciler) registriesForSecret(ctx context.Context, o client.Object) []reconcile.Request {
	var list berthv1alpha1.RegistryList
	if err := r.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{secretNamesIndex: o.GetName()}); err != nil {
		log.FromContext(ctx).Error(err, "Listing Registries for Secret", "secret", o.GetName())
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, reg := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&reg)})
	}
	return reqs
}

// loadDeployment reads the Deployment for the status when no phase did.
func (r *RegistryReconciler) loadDeployment(ctx context.Context, s *registryScope) error {
	if s.deployment != nil {
		return nil
	}
	dep := &appsv1.Deployment{}
	err := r.Get(ctx, client.ObjectKey{Namespace: s.reg.Namespace, Name: builders.DeploymentName(s.reg)}, dep)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return err
	}
	s.deployment = dep
	return nil
}
