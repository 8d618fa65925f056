package builders

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
)

// SecretRef is one key of a user's Secret that a Registry references.
type SecretRef struct {
	berthv1alpha1.SecretKeyRef
	// Field is the spec path that references it, for messages.
	Field string
	// Live is true when a change needs no pod restart: registryd reloads
	// the file (htpasswd, TLS), or the operator turns it into a generated
	// Secret registryd reloads (htpasswd users' passwords).
	Live bool
}

// SecretRefs lists the Secret keys reg references, in spec order. The
// Secrets the operator generates itself are not in the list.
func SecretRefs(reg *berthv1alpha1.Registry) []SecretRef {
	var refs []SecretRef
	add := func(field string, live bool, ref *berthv1alpha1.SecretKeyRef) {
		if ref != nil {
			refs = append(refs, SecretRef{SecretKeyRef: *ref, Field: field, Live: live})
		}
	}
	spec := &reg.Spec
	if s := spec.Storage.S3; s != nil {
		add("spec.storage.s3.accessKeySecretRef", false, s.AccessKeySecretRef)
		add("spec.storage.s3.secretKeySecretRef", false, s.SecretKeySecretRef)
	}
	if s := spec.Storage.Azure; s != nil {
		add("spec.storage.azure.accountKeySecretRef", false, s.AccountKeySecretRef)
		if s.ClientSecret != nil {
			add("spec.storage.azure.clientSecret.secretRef", false, &s.ClientSecret.SecretRef)
		}
	}
	if s := spec.Storage.GCS; s != nil {
		add("spec.storage.gcs.keyFileSecretRef", false, s.KeyFileSecretRef)
	}
	if a := spec.Auth; a != nil {
		if h := a.Htpasswd; h != nil {
			add("spec.auth.htpasswd.secretRef", true, h.SecretRef)
			for i := range h.Users {
				add(fmt.Sprintf("spec.auth.htpasswd.users[%d].passwordSecretRef", i), true, &h.Users[i].PasswordSecretRef)
			}
		}
		if t := a.Token; t != nil {
			add("spec.auth.token.rootCertBundleSecretRef", false, t.RootCertBundleSecretRef)
			add("spec.auth.token.jwksSecretRef", false, t.JWKSSecretRef)
		}
	}
	if t := spec.TLS; t != nil {
		name := TLSSecretName(reg)
		add("spec.tls.secretName", true, &berthv1alpha1.SecretKeyRef{Name: name, Key: corev1.TLSCertKey})
		add("spec.tls.secretName", true, &berthv1alpha1.SecretKeyRef{Name: name, Key: corev1.TLSPrivateKeyKey})
		add("spec.tls.clientCASecretRef", true, t.ClientCASecretRef)
	}
	if p := spec.Proxy; p != nil {
		add("spec.proxy.usernameSecretRef", false, p.UsernameSecretRef)
		add("spec.proxy.passwordSecretRef", false, p.PasswordSecretRef)
	}
	if n := spec.Notifications; n != nil {
		for i := range n.Endpoints {
			for j := range n.Endpoints[i].HeadersFrom {
				add(fmt.Sprintf("spec.notifications.endpoints[%d].headersFrom[%d].secretRef", i, j), false, &n.Endpoints[i].HeadersFrom[j].SecretRef)
			}
		}
	}
	return refs
}

// SecretNames are the distinct names of the Secrets reg references, sorted:
// the values of the field index that maps a Secret to its Registries.
func SecretNames(reg *berthv1alpha1.Registry) []string {
	seen := map[string]bool{}
	var names []string
	for _, r := range SecretRefs(reg) {
		if !seen[r.Name] {
			seen[r.Name] = true
			names = append(names, r.Name)
		}
	}
	sort.Strings(names)
	return names
}

// Checksum is the pod-template checksum: the config with live keys cleared
// and the values of every referenced Secret key registryd cannot reload.
// secrets holds the referenced Secrets by name; a missing one is hashed as
// absent.
func Checksum(rendered *Rendered, refs []SecretRef, secrets map[string]*corev1.Secret) string {
	h := sha256.New()
	h.Write(rendered.ChecksumConfig)
	var keys []string
	for _, r := range refs {
		if !r.Live {
			keys = append(keys, r.Name+"/"+r.Key)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		name, key, _ := strings.Cut(k, "/")
		fmt.Fprintf(h, "\x00%s\x00", k)
		if s := secrets[name]; s != nil {
			if v, ok := s.Data[key]; ok {
				fmt.Fprintf(h, "%d:", len(v))
				h.Write(v)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Hasher hashes a password for htpasswd.
type Hasher func(password []byte) ([]byte, error)

// BcryptHasher is the Hasher the controller uses.
func BcryptHasher(password []byte) ([]byte, error) {
	return bcrypt.GenerateFromPassword(password, bcrypt.DefaultCost)
}

// HTPasswd renders the htpasswd file of users, one "name:bcrypt" line per
// user in spec order. passwords maps a username to its clear password.
// A user whose entry in existing still matches the password keeps its hash,
// so an unchanged password never changes the file; a new user or a changed
// password is hashed with hash.
func HTPasswd(users []berthv1alpha1.HtpasswdUser, passwords map[string][]byte, existing []byte, hash Hasher) ([]byte, error) {
	old := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(existing))
	for sc.Scan() {
		if name, h, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok {
			old[name] = []byte(h)
		}
	}
	var out bytes.Buffer
	for _, u := range users {
		pw, ok := passwords[u.Username]
		if !ok {
			return nil, fmt.Errorf("no password for user %q", u.Username)
		}
		h := old[u.Username]
		if h == nil || bcrypt.CompareHashAndPassword(h, pw) != nil {
			var err error
			if h, err = hash(pw); err != nil {
				return nil, fmt.Errorf("hashing the password of user %q: %w", u.Username, err)
			}
		}
		fmt.Fprintf(&out, "%s:%s\n", u.Username, h)
	}
	return out.Bytes(), nil
}

// HTPasswdSecret is the generated htpasswd Secret of reg.
func HTPasswdSecret(reg *berthv1alpha1.Registry, htpasswd []byte) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: meta(reg, HTPasswdSecretName(reg)),
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{HTPasswdSecretKey: htpasswd},
	}
}

// HTTPSecret is the generated http.secret of reg, created once and kept:
// rotating it would invalidate upload state held by clients.
func HTTPSecret(reg *berthv1alpha1.Registry, secret []byte) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: meta(reg, HTTPSecretName(reg)),
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{HTTPSecretKey: secret},
	}
}

func meta(reg *berthv1alpha1.Registry, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: reg.Namespace, Labels: Labels(reg)}
}
