package controllers

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
)

// RegistryReconciler reconciles a Registry into registryd's children.
type RegistryReconciler struct {
	client.Client

	// RegistrydImage is the registryd image used when a Registry does not
	// override it (the manager's --registryd-image flag / REGISTRYD_IMAGE).
	RegistrydImage string
}

// +kubebuilder:rbac:groups=berth.dev,resources=registries,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=berth.dev,resources=registries/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=berth.dev,resources=registries/finalizers,verbs=update

// Reconcile fetches the Registry; the child phases (config, secrets,
// deployment, service, status) are added by the operator work (issue 6).
func (r *RegistryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var reg berthv1alpha1.Registry
	if err := r.Get(ctx, req.NamespacedName, &reg); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	log.FromContext(ctx).V(1).Info("Reconciling Registry", "generation", reg.Generation)
	return ctrl.Result{}, nil
}

// SetupWithManager registers the reconciler with the manager.
func (r *RegistryReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&berthv1alpha1.Registry{}).
		Named("registry").
		Complete(r)
}
