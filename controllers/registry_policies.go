package controllers

import (
	"errors"
	"fmt"

	"github.com/robfig/cron/v3"
	corev1 "k8s.io/api/core/v1"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/controllers/builders"
	"github.com/berth-dev/berth/registryd/configuration"
)

// The Registry's checks: what the API server accepted but the operator
// cannot honour. Each policy is a pure function of policyInput returning
// the problem it finds (Degraded's reason and message) or nil; a
// policyChain runs its policies in order and stops at the first problem.
// The reconcile evaluates each chain once its inputs exist (see
// Reconcile's phases), and a problem stops the writes that follow.

// policyInput is what the checks decide on, gathered by the reconcile.
type policyInput struct {
	reg *berthv1alpha1.Registry
	// certificateCRD: the API server serves cert-manager's Certificate
	// (looked up only when spec.tls.issuerRef is set).
	certificateCRD bool
	// secrets maps the name of every Secret the spec references to the
	// Secret, nil when it does not exist.
	secrets map[string]*corev1.Secret
	// rendered is config.yml, nil when rendering refused the spec
	// (invalid says why).
	rendered *builders.Rendered
	invalid  *builders.InvalidConfigError
	// support is what the registryd of this release implements.
	support configuration.Support
	// managerImage is the manager's own image (--manager-image).
	managerImage string
}

// policy is one check.
type policy func(*policyInput) *problem

// policyChain is checks evaluated in order.
type policyChain []policy

// evaluate returns the first problem of the chain, nil when none.
func (c policyChain) evaluate(in *policyInput) *problem {
	for _, p := range c {
		if pr := p(in); pr != nil {
			return pr
		}
	}
	return nil
}

// specPolicies need only the spec and what the API server serves; they
// run before anything is written.
var specPolicies = policyChain{replicasFitVolume, scheduleParses, certManagerInstalled}

// configPolicies need the referenced Secrets and the rendered config.yml;
// they run after the Certificate (whose Secret cert-manager writes) and
// before the other children.
var configPolicies = policyChain{secretsExist, configRenders, configSupported}

// schedulePolicies run before the garbage collection schedule's CronJob
// is written, after the registry's own children: a Registry whose
// schedule cannot run still serves.
var schedulePolicies = policyChain{managerImageKnown}

// replicasFitVolume: a ReadWriteOnce volume mounts on one node.
func replicasFitVolume(in *policyInput) *problem {
	if builders.ReadWriteOnce(in.reg) && builders.Replicas(in.reg) > 1 {
		return &problem{berthv1alpha1.ReasonInvalidStorage,
			"spec.replicas: a ReadWriteOnce filesystem volume allows at most 1 replica"}
	}
	return nil
}

// scheduleParses: the CronJob's schedule is a standard cron expression
// (the CRD's pattern lets some malformed ones through).
func scheduleParses(in *policyInput) *problem {
	gc := in.reg.Spec.GarbageCollection
	if gc == nil || gc.Schedule == "" {
		return nil
	}
	if _, err := cron.ParseStandard(gc.Schedule); err != nil {
		return &problem{berthv1alpha1.ReasonInvalidSchedule, fmt.Sprintf("spec.garbageCollection.schedule: %v", err)}
	}
	return nil
}

// certManagerInstalled: spec.tls.issuerRef needs cert-manager's
// Certificate.
func certManagerInstalled(in *policyInput) *problem {
	if t := in.reg.Spec.TLS; t != nil && t.IssuerRef != nil && !in.certificateCRD {
		return &problem{berthv1alpha1.ReasonCertManagerMissing,
			"spec.tls.issuerRef: the cert-manager Certificate CRD is not installed"}
	}
	return nil
}

// secretsExist: every Secret the spec references exists and has the key
// it names (the Secret watch brings the Registry back when it appears).
func secretsExist(in *policyInput) *problem {
	for _, ref := range builders.SecretRefs(in.reg) {
		sec := in.secrets[ref.Name]
		if sec == nil {
			return &problem{berthv1alpha1.ReasonSecretNotFound,
				fmt.Sprintf("%s: Secret %q not found", ref.Field, ref.Name)}
		}
		if _, ok := sec.Data[ref.Key]; !ok {
			return &problem{berthv1alpha1.ReasonSecretKeyNotFound,
				fmt.Sprintf("%s: Secret %q has no key %q", ref.Field, ref.Name, ref.Key)}
		}
	}
	return nil
}

// configRenders: the spec renders into a config.yml registryd accepts.
func configRenders(in *policyInput) *problem {
	if in.invalid != nil {
		return &problem{berthv1alpha1.ReasonInvalidConfig, in.invalid.Error()}
	}
	return nil
}

// configSupported: registryd of this release implements every feature
// config.yml uses (configuration.Implemented; spec.image is expected to
// run the same release), so the Registry reports what it lacks instead of
// crash-looping pods, and running pods keep their last good configuration.
// Every refused key is named.
func configSupported(in *policyInput) *problem {
	if in.rendered == nil {
		return nil
	}
	err := builders.CheckSupported(in.rendered, in.support)
	var unsupported *builders.UnsupportedConfigError
	var invalid *builders.InvalidConfigError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &unsupported):
		return &problem{berthv1alpha1.ReasonUnsupportedConfig, unsupported.Error()}
	case errors.As(err, &invalid):
		return &problem{berthv1alpha1.ReasonInvalidConfig, invalid.Error()}
	default:
		return &problem{berthv1alpha1.ReasonInvalidConfig, err.Error()}
	}
}

// managerImageKnown: the schedule's CronJob runs the manager's own image.
func managerImageKnown(in *policyInput) *problem {
	if gc := in.reg.Spec.GarbageCollection; gc != nil && gc.Schedule != "" && in.managerImage == "" {
		return &problem{berthv1alpha1.ReasonManagerImageUnknown,
			"spec.garbageCollection.schedule: the manager was started without its own image (--manager-image / MANAGER_IMAGE), which the schedule's CronJob runs"}
	}
	return nil
}
