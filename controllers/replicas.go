package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/controllers/builders"
	"github.com/berth-dev/berth/registryd/control"
)

// Replicas: what the operator knows about the registryd pods of a
// Registry comes from the pods themselves, never from what it wrote.
//
//   - A replica is a pod of the Registry whose registryd container is
//     running: only such a pod can accept a write. Pending pods, pods
//     whose container waits or has exited, accept none.
//   - Each replica is asked on its debug server (control.StatusPath, plain
//     HTTP, no auth, whatever TLS or auth the registry port has) whether it
//     refuses writes and under which hold.
//   - A change to the ConfigMap reaches a running pod when the kubelet next
//     syncs the pod, which by default happens only every 60-90 s. The
//     operator makes the kubelet sync a pod at once by changing an
//     annotation on the Pod object (SyncAnnotation): a pod update makes the
//     kubelet sync the pod, and each sync refreshes its ConfigMap and
//     Secret volumes. registryd watches its config directory and applies the
//     new files within a moment. See docs/garbage-collection.md.

// SyncAnnotation on a registryd Pod carries a token of the ConfigMap
// content last pushed to it; changing it makes the kubelet sync the pod's
// volumes now instead of at its next periodic sync.
const SyncAnnotation = "berth.dev/sync"

// probeTimeout bounds one status request to a replica.
const probeTimeout = 3 * time.Second

// ReplicaProber asks a registryd pod for its status.
type ReplicaProber interface {
	Probe(ctx context.Context, pod *corev1.Pod) (*control.Status, error)
}

// HTTPProber reads control.StatusPath from a pod's debug port.
type HTTPProber struct {
	// Client makes the requests; a client with probeTimeout when nil.
	Client *http.Client
	// Address returns host:port of the pod's debug server; the pod IP and
	// builders.DebugPort when nil. (Tests point it at processes on
	// loopback.)
	Address func(pod *corev1.Pod) string
}

// Probe implements ReplicaProber.
func (p *HTTPProber) Probe(ctx context.Context, pod *corev1.Pod) (*control.Status, error) {
	addr := ""
	if p.Address != nil {
		addr = p.Address(pod)
	} else if pod.Status.PodIP != "" {
		addr = net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(builders.DebugPort)))
	}
	if addr == "" {
		return nil, fmt.Errorf("pod %s has no address yet", pod.Name)
	}
	hc := p.Client
	if hc == nil {
		hc = &http.Client{Timeout: probeTimeout}
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+control.StatusPath, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", pod.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", pod.Name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("pod %s: status endpoint answered %s", pod.Name, resp.Status)
	}
	var st control.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("pod %s: status endpoint: %w", pod.Name, err)
	}
	return &st, nil
}

// replica is one running registryd pod and what it reported.
type replica struct {
	pod    *corev1.Pod
	status *control.Status // nil when the probe failed
	err    error
}

// isReplica reports whether pod runs a registryd container that could
// accept a write.
func isReplica(pod *corev1.Pod) bool {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == builders.ContainerName && cs.State.Running != nil {
			return true
		}
	}
	return false
}

// listReplicas lists reg's running registryd pods through r, which should
// be an uncached reader where the answer must be current (a garbage
// collection deciding that every replica is read-only).
func listReplicas(ctx context.Context, r client.Reader, reg *berthv1alpha1.Registry) ([]*corev1.Pod, error) {
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(reg.Namespace), client.MatchingLabels(builders.SelectorLabels(reg))); err != nil {
		return nil, fmt.Errorf("listing the pods of Registry %s: %w", reg.Name, err)
	}
	var out []*corev1.Pod
	for i := range pods.Items {
		if isReplica(&pods.Items[i]) {
			out = append(out, &pods.Items[i])
		}
	}
	slices.SortFunc(out, func(a, b *corev1.Pod) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out, nil
}

// probeReplicas asks every pod for its status, concurrently.
func probeReplicas(ctx context.Context, p ReplicaProber, pods []*corev1.Pod) []replica {
	out := make([]replica, len(pods))
	var wg sync.WaitGroup
	for i, pod := range pods {
		wg.Go(func() {
			st, err := p.Probe(ctx, pod)
			out[i] = replica{pod: pod, status: st, err: err}
		})
	}
	wg.Wait()
	return out
}

// podSyncToken is the SyncAnnotation value for reg's pods: a token of what
// the kubelet projects into them that registryd applies live — the
// ConfigMap's content (config.yml, hold.json) and the versions of the
// Secrets whose files registryd reloads (htpasswd, TLS, client CAs; and
// the users' password Secrets, from which the operator regenerates the
// htpasswd Secret). Both controllers compute it the same way, so they
// never undo each other's nudge. c is the manager's cached client.
func podSyncToken(ctx context.Context, c client.Reader, reg *berthv1alpha1.Registry, cm *corev1.ConfigMap) (string, error) {
	data := make(map[string]string, len(cm.Data)+4)
	for k, v := range cm.Data {
		data["configmap/"+k] = v
	}
	for _, name := range liveSecretNames(reg) {
		sec := &corev1.Secret{}
		err := c.Get(ctx, client.ObjectKey{Namespace: reg.Namespace, Name: name}, sec)
		switch {
		case apierrors.IsNotFound(err):
			data["secret/"+name] = ""
		case err != nil:
			return "", err
		default:
			data["secret/"+name] = sec.ResourceVersion
		}
	}
	return syncToken(data), nil
}

// liveSecretNames are the Secrets of reg whose change registryd takes
// without a restart, sorted.
func liveSecretNames(reg *berthv1alpha1.Registry) []string {
	seen := map[string]bool{}
	for _, ref := range builders.SecretRefs(reg) {
		if ref.Live {
			seen[ref.Name] = true
		}
	}
	if a := reg.Spec.Auth; a != nil && a.Htpasswd != nil && len(a.Htpasswd.Users) > 0 {
		seen[builders.HTPasswdSecretName(reg)] = true
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// syncToken hashes a map of file contents and versions: equal tokens,
// equal files.
func syncToken(data map[string]string) string {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%d:%s%d:%s", len(k), k, len(data[k]), data[k])
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// nudgePods makes the kubelet sync every pod whose SyncAnnotation is not
// token yet, so the files token names reach it now. It patches only that
// annotation.
func nudgePods(ctx context.Context, c client.Client, pods []*corev1.Pod, token string) error {
	for _, pod := range pods {
		if pod.Annotations[SyncAnnotation] == token || !pod.DeletionTimestamp.IsZero() {
			continue
		}
		patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, SyncAnnotation, token)
		if err := c.Patch(ctx, pod, client.RawPatch("application/merge-patch+json", patch)); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("nudging pod %s: %w", pod.Name, err)
		}
	}
	return nil
}
