package controllers

import (
	"context"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
)

// GCFieldOwner is the server-side apply field manager of a run's hold in
// the Registry's ConfigMap: the Registry controller applies config.yml as
// FieldOwner, a run applies hold.json as GCFieldOwner, and neither apply
// touches the other's key.
const GCFieldOwner = client.FieldOwner("berth-garbage-collection")

// registryNameIndex indexes GarbageCollections by spec.registryName.
const registryNameIndex = ".spec.registryName"

// Waits of the state machine: real waits for other processes, each named.
const (
	// verifyInterval: how often a run entering or leaving read-only asks
	// the replicas again (they apply a hold within a second of the
	// kubelet's volume sync).
	verifyInterval = time.Second
	// collectInterval: how often a collecting run re-verifies the
	// replicas and looks at its collector's pod (the manager caches no
	// pods, so nothing else tells it the collector exited; Job changes
	// also wake it).
	collectInterval = time.Second
	// stopCollectorInterval: how often a failing run checks that its
	// collector's pod has stopped before releasing the hold.
	stopCollectorInterval = 2 * time.Second
)

// GarbageCollectionReconciler drives one GarbageCollection run through its
// state machine (docs/garbage-collection.md):
//
//	Pending -> EnteringReadOnly -> Collecting -> LeavingReadOnly -> Succeeded
//	                 \______________\_______________\___________-> Failed (read-write restored)
//
// Every step is decided from the run's status and what the cluster and the
// replicas report now, never from memory, so a manager restarted in any
// phase carries on; each phase is idempotent. A failure sets status.reason
// and moves to LeavingReadOnly, so Failed is written only once the
// collector has stopped and every replica has left the run's hold.
type GarbageCollectionReconciler struct {
	client.Client

	// APIReader reads pods and collector Jobs without the cache: deciding
	// that every replica refuses writes must not rest on a stale list.
	APIReader client.Reader

	// Prober asks replicas for their status.
	Prober ReplicaProber

	// Recorder emits an event on every transition.
	Recorder record.EventRecorder

	// RegistrydImage is the registryd image of Registries that do not set
	// spec.image (the collector runs the same image as the registry).
	RegistrydImage string

	// Clock is the time source; the real clock when nil.
	Clock clock.PassiveClock
}

// RBAC (see registry_controller.go): runs are read from the cache, their
// status patched, finished ones beyond the history limits deleted; the
// collector Job is read without the cache, created, and deleted with its
// running pod when a run fails; the hold and the retention rules are
// applied to ConfigMaps, whose Secrets' versions the sync token reads
// (podSyncToken); every transition is an Event (core/v1, through the
// manager's recorder). finalizers/update: as for Registries, the Job and
// the retention ConfigMap are controlled by the run.
// +kubebuilder:rbac:groups=berth.dev,resources=garbagecollections,verbs=list;watch;delete
// +kubebuilder:rbac:groups=berth.dev,resources=garbagecollections/status,verbs=patch
// +kubebuilder:rbac:groups=berth.dev,resources=garbagecollections/finalizers,verbs=update
// +kubebuilder:rbac:groups=berth.dev,resources=registries,verbs=list;watch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=list;patch;delete
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// gcScope is what the phases of one reconcile share.
type gcScope struct {
	gc     *berthv1alpha1.GarbageCollection
	before *berthv1alpha1.GarbageCollection
	// reg is the Registry the run names; nil when it does not exist.
	reg *berthv1alpha1.Registry
	now time.Time
	// events are emitted once the status that records the transition is
	// written.
	events []event
	// finished is set when this reconcile moved the run to Succeeded or
	// Failed (for metrics and pruning).
	finished bool
}

type event struct{ typ, reason, message string }

func (s *gcScope) event(typ, reason, message string) {
	s.events = append(s.events, event{typ, reason, message})
}

// Reconcile advances a run by one step.
func (r *GarbageCollectionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	gc := &berthv1alpha1.GarbageCollection{}
	if err := r.Get(ctx, req.NamespacedName, gc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if gc.Finished() {
		return ctrl.Result{}, r.pruneHistory(ctx, gc)
	}
	s := &gcScope{gc: gc, before: gc.DeepCopy(), now: r.clock().Now()}
	if err := r.loadRegistry(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	log.FromContext(ctx).V(1).Info("Reconciling GarbageCollection", "registry", gc.Spec.RegistryName, "phase", gc.Status.Phase)

	var res ctrl.Result
	var err error
	switch gc.Status.Phase {
	case "", berthv1alpha1.GCPending:
		res, err = r.pending(ctx, s)
	case berthv1alpha1.GCEnteringReadOnly:
		res, err = r.enterReadOnly(ctx, s)
	case berthv1alpha1.GCCollecting:
		res, err = r.collect(ctx, s)
	case berthv1alpha1.GCLeavingReadOnly:
		res, err = r.leaveReadOnly(ctx, s)
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.writeStatus(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	if s.finished {
		recordRunMetrics(s.gc)
		if err := r.pruneHistory(ctx, s.gc); err != nil {
			return ctrl.Result{}, err
		}
	}
	return res, nil
}

// writeStatus writes the status when it changed, then emits the events of
// the transitions it records.
func (r *GarbageCollectionReconciler) writeStatus(ctx context.Context, s *gcScope) error {
	if !equality.Semantic.DeepEqual(s.gc.Status, s.before.Status) {
		if err := r.Status().Patch(ctx, s.gc, client.MergeFrom(s.before)); err != nil {
			return err
		}
	}
	if r.Recorder != nil {
		for _, e := range s.events {
			r.Recorder.Event(s.gc, e.typ, e.reason, e.message)
		}
	}
	return nil
}

// loadRegistry reads the Registry the run names.
func (r *GarbageCollectionReconciler) loadRegistry(ctx context.Context, s *gcScope) error {
	reg := &berthv1alpha1.Registry{}
	err := r.Get(ctx, client.ObjectKey{Namespace: s.gc.Namespace, Name: s.gc.Spec.RegistryName}, reg)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return err
	}
	if reg.DeletionTimestamp.IsZero() {
		s.reg = reg
	}
	return nil
}

func (r *GarbageCollectionReconciler) clock() clock.PassiveClock {
	if r.Clock == nil {
		return clock.RealClock{}
	}
	return r.Clock
}

// SetupWithManager registers the reconciler: runs, their Jobs, and the
// Registries they name (a Registry deleted or changed mid-run fails it).
func (r *GarbageCollectionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := indexGCsByRegistry(mgr); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&berthv1alpha1.GarbageCollection{}).
		Owns(&batchv1.Job{}).
		Watches(&berthv1alpha1.Registry{}, handler.EnqueueRequestsFromMapFunc(r.activeRunsOf)).
		Watches(&berthv1alpha1.GarbageCollection{}, handler.EnqueueRequestsFromMapFunc(r.queuedBehind)).
		Named("garbagecollection").
		Complete(r)
}

// indexGCsByRegistry registers the spec.registryName index.
func indexGCsByRegistry(mgr ctrl.Manager) error {
	return mgr.GetFieldIndexer().IndexField(context.Background(), &berthv1alpha1.GarbageCollection{}, registryNameIndex,
		func(o client.Object) []string {
			return []string{o.(*berthv1alpha1.GarbageCollection).Spec.RegistryName}
		})
}

// runsOf lists the runs of Registry name in namespace ns.
func runsOf(ctx context.Context, c client.Reader, ns, name string) ([]berthv1alpha1.GarbageCollection, error) {
	var list berthv1alpha1.GarbageCollectionList
	if err := c.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{registryNameIndex: name}); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// activeRunsOf maps a Registry to its unfinished runs.
func (r *GarbageCollectionReconciler) activeRunsOf(ctx context.Context, o client.Object) []reconcile.Request {
	runs, err := runsOf(ctx, r.Client, o.GetNamespace(), o.GetName())
	if err != nil {
		log.FromContext(ctx).Error(err, "Listing GarbageCollections for Registry", "registry", o.GetName())
		return nil
	}
	var reqs []reconcile.Request
	for i := range runs {
		if !runs[i].Finished() {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&runs[i])})
		}
	}
	return reqs
}

// queuedBehind maps a run that changed to the Pending runs of the same
// Registry, which may start once it finished.
func (r *GarbageCollectionReconciler) queuedBehind(ctx context.Context, o client.Object) []reconcile.Request {
	gc := o.(*berthv1alpha1.GarbageCollection)
	if !gc.Finished() {
		return nil
	}
	runs, err := runsOf(ctx, r.Client, gc.Namespace, gc.Spec.RegistryName)
	if err != nil {
		log.FromContext(ctx).Error(err, "Listing GarbageCollections", "registry", gc.Spec.RegistryName)
		return nil
	}
	var reqs []reconcile.Request
	for i := range runs {
		if p := runs[i].Status.Phase; p == "" || p == berthv1alpha1.GCPending {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&runs[i])})
		}
	}
	return reqs
}
