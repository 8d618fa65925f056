package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// AppliedHashAnnotation on every applied child is a hash of what the
// operator last applied. A child whose annotation matches the desired
// object, and whose live fields still hold every value the operator sets
// (see putBack), is not applied again, so a reconcile with nothing to
// change issues no write.
const AppliedHashAnnotation = "berth.dev/applied-hash"

// childWriter is how both controllers write what they own: objects made
// once (create), objects server-side applied as one field manager (apply;
// ensure adds the applied hash that makes an unchanged reconcile write
// nothing, and puts hand edits back), and children a spec change removed
// (deleteOwned). The Registry controller writes as FieldOwner, a
// GarbageCollection run as GCFieldOwner.
type childWriter struct {
	client.Client
	fieldOwner client.FieldOwner
}

// children is the Registry controller's childWriter.
func (r *RegistryReconciler) children() childWriter { return childWriter{r.Client, FieldOwner} }

// children is the GarbageCollection controller's childWriter.
func (r *GarbageCollectionReconciler) children() childWriter {
	return childWriter{r.Client, GCFieldOwner}
}

// create creates obj, controlled by owner, unless it exists: for objects
// written once and never updated (the http secret, a collector Job).
func (w childWriter) create(ctx context.Context, owner metav1.Object, obj client.Object) error {
	if err := controllerutil.SetControllerReference(owner, obj, w.Scheme()); err != nil {
		return err
	}
	kind := kindOf(obj) // before the typed client's decoding clears TypeMeta
	if err := w.Create(ctx, obj); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return fmt.Errorf("creating %s %s: %w", kind, obj.GetName(), err)
	}
	log.FromContext(ctx).Info("Created "+kind, "name", obj.GetName())
	return nil
}

// apply server-side applies obj as w's field manager, taking over the
// fields it sets from any other manager. With an owner, obj is made
// controlled by it first; without one, obj goes as it is (with no owner
// reference, the field manager gives up any it applied before).
func (w childWriter) apply(ctx context.Context, owner metav1.Object, obj client.Object) error {
	if owner != nil {
		if err := controllerutil.SetControllerReference(owner, obj, w.Scheme()); err != nil {
			return err
		}
	}
	if err := w.Patch(ctx, obj, client.Apply, w.fieldOwner, client.ForceOwnership); err != nil {
		return fmt.Errorf("applying %s %s: %w", kindOf(obj), obj.GetName(), err)
	}
	return nil
}

// ensure applies obj, controlled by owner, with the applied hash, unless
// the live object already carries the same hash and has not drifted from
// it (a hand edit of a field the operator sets; putBack writes only that
// back). It returns the live object.
func (w childWriter) ensure(ctx context.Context, owner metav1.Object, obj client.Object) (client.Object, error) {
	if err := controllerutil.SetControllerReference(owner, obj, w.Scheme()); err != nil {
		return nil, err
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:16])
	annotations := obj.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[AppliedHashAnnotation] = hash
	obj.SetAnnotations(annotations)

	live, err := w.newLike(obj)
	if err != nil {
		return nil, err
	}
	err = w.Get(ctx, client.ObjectKeyFromObject(obj), live)
	switch {
	case err == nil && live.GetAnnotations()[AppliedHashAnnotation] == hash:
		return w.putBack(ctx, data, live)
	case err != nil && !apierrors.IsNotFound(err):
		return nil, err
	}
	kind := kindOf(obj)
	if err := w.apply(ctx, nil, obj); err != nil {
		return nil, err
	}
	log.FromContext(ctx).Info("Applied "+kind, "name", obj.GetName())
	return obj, nil
}

// putBack corrects drift: a live child whose hash says it is what the
// operator last applied, but whose fields someone edited since. Each
// top-level section holding a field the operator sets whose live value
// differs (see differs) is written back with a JSON merge patch of the
// desired section: maps merge (what the API server or others added
// stays), lists are replaced whole (an env var or a port added by hand
// goes, as it would from `kubectl apply` of the object). Labels and
// annotations are put back without touching the rest of metadata. A
// PersistentVolumeClaim is never compared: its spec is immutable but for
// a resize, which is the user's to make. Nothing is written when nothing
// drifted.
func (w childWriter) putBack(ctx context.Context, desired []byte, live client.Object) (client.Object, error) {
	if _, ok := live.(*corev1.PersistentVolumeClaim); ok {
		return live, nil
	}
	var want, got map[string]any
	if err := json.Unmarshal(desired, &want); err != nil {
		return nil, err
	}
	data, err := json.Marshal(live)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &got); err != nil {
		return nil, err
	}
	patch := map[string]any{}
	var fields []string
	for key, w := range want {
		switch key {
		case "apiVersion", "kind", "status":
			// TypeMeta is not filled in on typed objects read back, and
			// status is never the operator's to set on a child.
			continue
		case "metadata":
			wm, _ := w.(map[string]any)
			gm, _ := got["metadata"].(map[string]any)
			section := map[string]any{}
			for _, k := range []string{"labels", "annotations"} {
				if f := differs("metadata."+k, wm[k], gm[k]); f != "" {
					section[k] = wm[k]
					fields = append(fields, f)
				}
			}
			if len(section) > 0 {
				patch["metadata"] = section
			}
		default:
			if f := differs(key, w, got[key]); f != "" {
				patch[key] = w
				fields = append(fields, f)
			}
		}
	}
	if len(patch) == 0 {
		return live, nil
	}
	body, err := json.Marshal(patch)
	if err != nil {
		return nil, err
	}
	slices.Sort(fields)
	if err := w.Patch(ctx, live, client.RawPatch(types.MergePatchType, body), w.fieldOwner); err != nil {
		return nil, fmt.Errorf("putting back %s %s (%s): %w", kindOf(live), live.GetName(), strings.Join(fields, ", "), err)
	}
	log.FromContext(ctx).Info("Put back a hand edit of "+kindOf(live), "name", live.GetName(), "fields", fields)
	return live, nil
}

// differs names the first path under which want, the desired JSON value,
// sets something got, the live one, lacks: "" when every value want sets
// is in got. Values got adds are not compared (defaults, a cluster IP), an
// empty string in want is an unset field of a typed object, and a list
// must have want's length with each of want's elements found in it (in
// any order for objects, whose server defaults differ element by element).
func differs(path string, want, got any) string {
	switch w := want.(type) {
	case nil:
		return ""
	case string:
		if w == "" {
			return "" // an unset field of a typed object
		}
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return path
		}
		for k, v := range w {
			if p := differs(path+"."+k, v, g[k]); p != "" {
				return p
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok {
			return path
		}
		if len(w) != len(g) {
			return path
		}
		for i, v := range w {
			if _, isObject := v.(map[string]any); !isObject {
				if !equality.Semantic.DeepEqual(v, g[i]) {
					return path
				}
				continue
			}
			if !slices.ContainsFunc(g, func(e any) bool { return differs("", v, e) == "" }) {
				return fmt.Sprintf("%s[%d]", path, i)
			}
		}
		return ""
	}
	if !equality.Semantic.DeepEqual(want, got) {
		return path
	}
	return ""
}

func kindOf(obj client.Object) string {
	if k := obj.GetObjectKind().GroupVersionKind().Kind; k != "" {
		return k
	}
	return fmt.Sprintf("%T", obj)
}

// newLike returns an empty object of obj's type (and GVK, for
// unstructured objects).
func (w childWriter) newLike(obj client.Object) (client.Object, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		out := &unstructured.Unstructured{}
		out.SetGroupVersionKind(u.GroupVersionKind())
		return out, nil
	}
	gvk, err := w.GroupVersionKindFor(obj)
	if err != nil {
		return nil, err
	}
	o, err := w.Scheme().New(gvk)
	if err != nil {
		return nil, err
	}
	return o.(client.Object), nil
}

// deleteOwned deletes the named child of owner's namespace if it exists
// and owner controls it.
func (w childWriter) deleteOwned(ctx context.Context, owner metav1.Object, obj client.Object, name string) error {
	err := w.Get(ctx, client.ObjectKey{Namespace: owner.GetNamespace(), Name: name}, obj)
	switch {
	case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
		return nil
	case err != nil:
		return err
	}
	if !metav1.IsControlledBy(obj, owner) {
		return nil
	}
	if err := w.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	log.FromContext(ctx).Info("Deleted", "kind", fmt.Sprintf("%T", obj), "name", name)
	return nil
}
