// Command local-volumes is the storage provisioner of the local cluster
// (hack/cluster-up.sh). It runs on the node as a plain process, next to the
// kubelet, and gives every PersistentVolumeClaim of its StorageClass a
// `local` PersistentVolume backed by a fresh directory under -root:
//
//   - a claim the PV controller hands to -provisioner (annotation
//     volume.kubernetes.io/storage-provisioner) gets a directory (mode 0777,
//     so non-root pods can write) and a PV pre-bound to it, pinned to -node;
//     with WaitForFirstConsumer it waits until the scheduler picked the node;
//   - a PV it provisioned that becomes Released under reclaim policy Delete
//     has its directory removed and is deleted.
//
// Capacity is recorded, not enforced: every volume shares the disk holding
// -root. It is a development substitute for a real CSI driver, just enough
// for PVCs to bind on a single-node cluster.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

const (
	annStorageProvisioner = "volume.kubernetes.io/storage-provisioner"
	annSelectedNode       = "volume.kubernetes.io/selected-node"
	annProvisionedBy      = "pv.kubernetes.io/provisioned-by"
	// resync bounds how long a failed step waits before it is retried.
	resync = 10 * time.Second
)

type provisioner struct {
	name   string
	node   string
	root   string
	client kubernetes.Interface
	pvcs   corelisters.PersistentVolumeClaimLister
	pvs    corelisters.PersistentVolumeLister
	scs    storagelisters.StorageClassLister
}

func main() {
	var (
		kubeconfig string
		p          provisioner
	)
	flag.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the provisioner's identity")
	flag.StringVar(&p.name, "provisioner", "berth.dev/local-volumes", "provisioner name StorageClasses refer to")
	flag.StringVar(&p.node, "node", "", "name of the node the volumes live on (required)")
	flag.StringVar(&p.root, "root", "", "directory that holds one sub-directory per volume (required)")
	flag.Parse()
	if p.node == "" || p.root == "" {
		klog.Fatal("-node and -root are required")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		klog.Fatal(err)
	}
	p.client = kubernetes.NewForConfigOrDie(cfg)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	factory := informers.NewSharedInformerFactory(p.client, resync)
	p.pvcs = factory.Core().V1().PersistentVolumeClaims().Lister()
	p.pvs = factory.Core().V1().PersistentVolumes().Lister()
	p.scs = factory.Storage().V1().StorageClasses().Lister()

	// Every event only nudges one loop that reconciles everything: the
	// cluster holds a handful of volumes, and one loop needs no locking.
	kick := make(chan struct{}, 1)
	nudge := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notify(kick) },
		UpdateFunc: func(any, any) { notify(kick) },
		DeleteFunc: func(any) { notify(kick) },
	}
	for _, inf := range []cache.SharedIndexInformer{
		factory.Core().V1().PersistentVolumeClaims().Informer(),
		factory.Core().V1().PersistentVolumes().Informer(),
		factory.Storage().V1().StorageClasses().Informer(),
	} {
		if _, err := inf.AddEventHandler(nudge); err != nil {
			klog.Fatal(err)
		}
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	klog.InfoS("Started", "provisioner", p.name, "node", p.node, "root", p.root)

	ticker := time.NewTicker(resync)
	defer ticker.Stop()
	for {
		p.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-ticker.C:
		}
	}
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (p *provisioner) reconcile(ctx context.Context) {
	claims, err := p.pvcs.List(labels.Everything())
	if err != nil {
		klog.ErrorS(err, "Listing claims")
		return
	}
	for _, pvc := range claims {
		if err := p.provision(ctx, pvc); err != nil {
			klog.ErrorS(err, "Provisioning", "claim", klog.KObj(pvc))
		}
	}
	volumes, err := p.pvs.List(labels.Everything())
	if err != nil {
		klog.ErrorS(err, "Listing volumes")
		return
	}
	for _, pv := range volumes {
		if err := p.reclaim(ctx, pv); err != nil {
			klog.ErrorS(err, "Deleting", "volume", pv.Name)
		}
	}
}

// volumeName is stable per claim, so a retry after a crash finds the PV it
// already created instead of making a second one.
func volumeName(pvc *corev1.PersistentVolumeClaim) string { return "pvc-" + string(pvc.UID) }

func (p *provisioner) provision(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	if pvc.Spec.VolumeName != "" || pvc.Status.Phase != corev1.ClaimPending ||
		pvc.Annotations[annStorageProvisioner] != p.name || pvc.DeletionTimestamp != nil {
		return nil
	}
	if _, err := p.pvs.Get(volumeName(pvc)); err == nil {
		return nil // created; the PV controller binds it
	}
	if pvc.Spec.StorageClassName == nil {
		return nil
	}
	sc, err := p.scs.Get(*pvc.Spec.StorageClassName)
	if err != nil {
		return err
	}
	if sc.VolumeBindingMode != nil && *sc.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer {
		if node := pvc.Annotations[annSelectedNode]; node == "" {
			return nil // not scheduled yet
		} else if node != p.node {
			return fmt.Errorf("claim was scheduled to node %q, this provisioner serves %q", node, p.node)
		}
	}
	if pvc.Spec.VolumeMode != nil && *pvc.Spec.VolumeMode == corev1.PersistentVolumeBlock {
		return errors.New("block volumes are not supported")
	}

	dir := filepath.Join(p.root, volumeName(pvc))
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o777); err != nil { // MkdirAll is subject to the umask
		return err
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	if sc.ReclaimPolicy != nil {
		reclaim = *sc.ReclaimPolicy
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        volumeName(pvc),
			Annotations: map[string]string{annProvisionedBy: p.name},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: pvc.Spec.Resources.Requests[corev1.ResourceStorage]},
			AccessModes:                   pvc.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              sc.Name,
			MountOptions:                  sc.MountOptions,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				Local: &corev1.LocalVolumeSource{Path: dir},
			},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
					Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{p.node},
				}}}},
			}},
		},
	}
	if _, err := p.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	klog.InfoS("Provisioned", "claim", klog.KObj(pvc), "volume", pv.Name, "path", dir)
	return nil
}

func (p *provisioner) reclaim(ctx context.Context, pv *corev1.PersistentVolume) error {
	if pv.Annotations[annProvisionedBy] != p.name || pv.Status.Phase != corev1.VolumeReleased ||
		pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete || pv.Spec.Local == nil {
		return nil
	}
	dir := filepath.Clean(pv.Spec.Local.Path)
	if !strings.HasPrefix(dir, filepath.Clean(p.root)+string(filepath.Separator)) {
		return fmt.Errorf("path %q is outside %q, refusing to delete it", dir, p.root)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	err := p.client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	klog.InfoS("Deleted", "volume", pv.Name, "path", dir)
	return nil
}
