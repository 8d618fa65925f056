package controllers

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
)

// GarbageCollectionReconciler drives one GarbageCollection run through its
// state machine (DESIGN.md, "Garbage collection").
type GarbageCollectionReconciler struct {
	client.Client
}

// +kubebuilder:rbac:groups=berth.dev,resources=garbagecollections,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=berth.dev,resources=garbagecollections/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=berth.dev,resources=garbagecollections/finalizers,verbs=update

// Reconcile fetches the run; the phases are added by the GC operator work.
func (r *GarbageCollectionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var gc berthv1alpha1.GarbageCollection
	if err := r.Get(ctx, req.NamespacedName, &gc); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	log.FromContext(ctx).V(1).Info("Reconciling GarbageCollection", "registry", gc.Spec.RegistryName, "phase", gc.Status.Phase)
	return ctrl.Result{}, nil
}

// SetupWithManager registers the reconciler with the manager.
func (r *GarbageCollectionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&berthv1alpha1.GarbageCollection{}).
		Named("garbagecollection").
		Complete(r)
}
