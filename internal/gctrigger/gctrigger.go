// Package gctrigger is the manager's gc-trigger command: the process a
// Registry's garbage collection CronJob runs. It reads the Registry, creates
// one GarbageCollection for it carrying a copy of the Registry's
// spec.garbageCollection.retention as it is now (so the run records the
// rules it applies), and exits; the GarbageCollection controller does the
// rest. It needs only the right to create GarbageCollections in its
// namespace and to read that one Registry (the Role the operator gives the
// CronJob's ServiceAccount).
//
// The run is named after the trigger pod's Job (env JOB_NAME), so a trigger
// pod retried by its Job creates the same run once, and
// `kubectl create job --from=cronjob/<registry>-gc <name>` creates a run
// named <name>.
package gctrigger

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/controllers/builders"
)

// Command is the subcommand name the manager binary answers to.
const Command = "gc-trigger"

// Options describe the run to create.
type Options struct {
	Namespace string
	Registry  string
	// Name of the run; generated from the Registry's name when empty.
	Name           string
	DeleteUntagged bool
	DryRun         bool
	Timeout        time.Duration
	GracePeriod    time.Duration
	// Retention are the rules the run applies.
	Retention []berthv1alpha1.RetentionRule
}

// GarbageCollection is the run o describes.
func (o Options) GarbageCollection() *berthv1alpha1.GarbageCollection {
	gc := &berthv1alpha1.GarbageCollection{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: o.Namespace,
			Name:      o.Name,
			Labels:    map[string]string{builders.RegistryLabel: o.Registry, builders.TriggerLabel: "schedule"},
		},
		Spec: berthv1alpha1.GarbageCollectionSpec{
			RegistryName:   o.Registry,
			DeleteUntagged: o.DeleteUntagged,
			DryRun:         o.DryRun,
			Timeout:        &berthv1alpha1.Duration{Duration: o.Timeout},
			GracePeriod:    &berthv1alpha1.Duration{Duration: o.GracePeriod},
			Retention:      o.Retention,
		},
	}
	if len(o.Registry) > 63 {
		delete(gc.Labels, builders.RegistryLabel)
	}
	if o.Name == "" {
		gc.GenerateName = o.Registry + "-"
	}
	return gc
}

// Create creates the run. It reports created=false when a run of that
// name exists already (a retried trigger): that is success too.
func Create(ctx context.Context, c client.Client, o Options) (gc *berthv1alpha1.GarbageCollection, created bool, err error) {
	gc = o.GarbageCollection()
	err = c.Create(ctx, gc)
	switch {
	case err == nil:
		return gc, true, nil
	case apierrors.IsAlreadyExists(err) && o.Name != "":
		return gc, false, nil
	}
	return nil, false, fmt.Errorf("creating GarbageCollection for Registry %s: %w", o.Registry, err)
}

// Main runs the command with args (after the command name) and returns the
// exit code. config is the API server to talk to (nil: in-cluster or
// KUBECONFIG, as controller-runtime finds it).
func Main(ctx context.Context, args []string, config func() (*rest.Config, error), stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(Command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := Options{}
	fs.StringVar(&o.Registry, "registry", "", "Registry to collect (required)")
	fs.StringVar(&o.Namespace, "namespace", os.Getenv(builders.TriggerEnvNamespace), "namespace of the Registry (env "+builders.TriggerEnvNamespace+")")
	fs.StringVar(&o.Name, "name", os.Getenv(builders.TriggerEnvJobName), "name of the GarbageCollection (env "+builders.TriggerEnvJobName+"); generated when empty")
	fs.BoolVar(&o.DeleteUntagged, "delete-untagged", false, "also delete manifests no tag reaches")
	fs.BoolVar(&o.DryRun, "dry-run", false, "report what would be deleted, delete nothing")
	fs.DurationVar(&o.Timeout, "timeout", builders.DefaultGCTimeout, "bound of the whole run")
	fs.DurationVar(&o.GracePeriod, "grace-period", builders.DefaultGCGracePeriod, "content younger than this is never deleted")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var problems []error
	if o.Registry == "" {
		problems = append(problems, errors.New("--registry is required"))
	}
	if o.Namespace == "" {
		problems = append(problems, errors.New("--namespace (or env "+builders.TriggerEnvNamespace+") is required"))
	}
	if o.Timeout < 10*time.Second {
		problems = append(problems, errors.New("--timeout must be at least 10s"))
	}
	if o.GracePeriod < 0 {
		problems = append(problems, errors.New("--grace-period must not be negative"))
	}
	if err := errors.Join(problems...); err != nil {
		fmt.Fprintln(stderr, "gc-trigger:", err)
		return 2
	}
	cfg, err := config()
	if err != nil {
		fmt.Fprintln(stderr, "gc-trigger:", err)
		return 1
	}
	scheme := runtime.NewScheme()
	if err := berthv1alpha1.AddToScheme(scheme); err != nil {
		fmt.Fprintln(stderr, "gc-trigger:", err)
		return 1
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintln(stderr, "gc-trigger:", err)
		return 1
	}
	reg := &berthv1alpha1.Registry{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: o.Registry}, reg); err != nil {
		fmt.Fprintf(stderr, "gc-trigger: reading Registry %s/%s for its retention rules: %v\n", o.Namespace, o.Registry, err)
		return 1
	}
	if p := reg.Spec.GarbageCollection; p != nil {
		o.Retention = p.Retention
	}
	gc, created, err := Create(ctx, c, o)
	if err != nil {
		fmt.Fprintln(stderr, "gc-trigger:", err)
		return 1
	}
	if created {
		fmt.Fprintf(stdout, "Created GarbageCollection %s/%s for Registry %s with %d retention rules\n", gc.Namespace, gc.Name, o.Registry, len(o.Retention))
	} else {
		fmt.Fprintf(stdout, "GarbageCollection %s/%s exists already\n", gc.Namespace, gc.Name)
	}
	return 0
}
