// Command manager is the Berth operator: it reconciles Registry and
// GarbageCollection objects. `manager gc-trigger ...` is the small command
// a Registry's garbage collection CronJob runs (package gctrigger).
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	_ "k8s.io/client-go/plugin/pkg/client/auth"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/controllers"
	"github.com/berth-dev/berth/internal/gctrigger"
	"github.com/berth-dev/berth/internal/version"
)

var scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(berthv1alpha1.AddToScheme(scheme))
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == gctrigger.Command {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		code := gctrigger.Main(ctx, os.Args[2:], ctrl.GetConfig, os.Stdout, os.Stderr)
		cancel()
		os.Exit(code)
	}
	var (
		metricsAddr     string
		probeAddr       string
		leaderElect     bool
		registrydImage  string
		managerImage    string
		watchNamespaces string
		printVersion    bool
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "Address the metrics endpoint binds to; \"0\" disables it.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the health and readiness probes bind to.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Enable leader election, so only one manager reconciles at a time.")
	flag.StringVar(&registrydImage, "registryd-image", os.Getenv("REGISTRYD_IMAGE"), "registryd image for Registries that do not set spec.image (env REGISTRYD_IMAGE).")
	flag.StringVar(&managerImage, "manager-image", os.Getenv("MANAGER_IMAGE"), "This manager's own image, which garbage collection CronJobs run (env MANAGER_IMAGE).")
	flag.StringVar(&watchNamespaces, "watch-namespaces", os.Getenv("WATCH_NAMESPACES"), "Comma-separated namespaces to watch; all when empty (env WATCH_NAMESPACES).")
	flag.BoolVar(&printVersion, "version", false, "Print the version and exit.")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()

	if printVersion {
		fmt.Println("manager", version.Version)
		return
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	setupLog := ctrl.Log.WithName("setup")

	if registrydImage == "" {
		setupLog.Error(nil, "no registryd image: set --registryd-image or REGISTRYD_IMAGE")
		os.Exit(1)
	}

	// The operator caches no pods (it lists a Registry's pods when it
	// needs them), and of the kinds it creates only its own objects.
	ours := labels.SelectorFromSet(labels.Set{"app.kubernetes.io/managed-by": "berth"})
	cacheOpts := cache.Options{ByObject: map[client.Object]cache.ByObject{
		&batchv1.Job{}:           {Label: ours},
		&batchv1.CronJob{}:       {Label: ours},
		&corev1.ServiceAccount{}: {Label: ours},
		&rbacv1.Role{}:           {Label: ours},
		&rbacv1.RoleBinding{}:    {Label: ours},
	}}
	if watchNamespaces != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range strings.Split(watchNamespaces, ",") {
			if ns = strings.TrimSpace(ns); ns != "" {
				cacheOpts.DefaultNamespaces[ns] = cache.Config{}
			}
		}
	}

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress: probeAddr,
		LeaderElection:         leaderElect,
		LeaderElectionID:       "manager.berth.dev",
		Cache:                  cacheOpts,
	})
	if err != nil {
		setupLog.Error(err, "Unable to create manager")
		os.Exit(1)
	}
	if managerImage == "" {
		setupLog.Info("No manager image (--manager-image / MANAGER_IMAGE): Registries with a garbage collection schedule will report Degraded")
	}
	prober := &controllers.HTTPProber{Client: &http.Client{Timeout: 3 * time.Second}}
	if err := (&controllers.RegistryReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Prober: prober,
		RegistrydImage: registrydImage, ManagerImage: managerImage,
	}).SetupWithManager(mgr); err != nil {
		setupLog.Error(err, "Unable to create controller", "controller", "Registry")
		os.Exit(1)
	}
	if err := (&controllers.GarbageCollectionReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Prober: prober,
		Recorder: mgr.GetEventRecorderFor("garbagecollection-controller"), RegistrydImage: registrydImage,
	}).SetupWithManager(mgr); err != nil {
		setupLog.Error(err, "Unable to create controller", "controller", "GarbageCollection")
		os.Exit(1)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		setupLog.Error(err, "Unable to set up health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		setupLog.Error(err, "Unable to set up ready check")
		os.Exit(1)
	}

	setupLog.Info("Starting manager", "version", version.Version, "registrydImage", registrydImage, "managerImage", managerImage)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		setupLog.Error(err, "Problem running manager")
		os.Exit(1)
	}
}
