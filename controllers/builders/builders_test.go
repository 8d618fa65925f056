package builders

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/registryd/configuration"
)

func TestCredentialsReachRegistrydThroughTheEnvironment(t *testing.T) {
	reg := registry(goldenCases["notifications"])
	rendered, err := Render(reg, false)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(rendered.Config, []byte("Bearer")) {
		t.Fatal("the header's value leaked into config.yml")
	}
	env := []string{
		"REGISTRY_HTTP_SECRET=s3cr3t",
		"REGISTRY_NOTIFICATIONS_ENDPOINTS_0_HEADERS_AUTHORIZATION_0=Bearer abc:def",
	}
	cfg, err := configuration.ParseWithEnv(bytes.NewReader(rendered.Config), env)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Notifications.Endpoints[0].Headers["Authorization"]; len(got) != 1 || got[0] != "Bearer abc:def" {
		t.Errorf("Authorization header = %q, want [Bearer abc:def]", got)
	}
	if cfg.HTTP.Secret != "s3cr3t" {
		t.Errorf("http.secret = %q", cfg.HTTP.Secret)
	}

	for name, spec := range goldenCases {
		r, err := Render(registry(spec), false)
		if err != nil {
			t.Fatal(err)
		}
		for _, word := range []string{"accesskey", "secretkey", "accountkey", "password", "secret:"} {
			if bytes.Contains(bytes.ToLower(r.Config), []byte(word)) {
				t.Errorf("%s: config.yml mentions %q", name, word)
			}
		}
	}
}

func TestChecksum(t *testing.T) {
	base := berthv1alpha1.RegistrySpec{
		Storage: berthv1alpha1.RegistryStorage{S3: goldenCases["s3"].Storage.S3},
		Auth:    &berthv1alpha1.RegistryAuth{Htpasswd: &berthv1alpha1.HtpasswdAuth{Realm: "r", SecretRef: ref("htpasswd", "htpasswd")}},
		TLS:     &berthv1alpha1.RegistryTLS{SecretName: "tls"},
	}
	secrets := func(access, htpasswd, cert string) map[string]*corev1.Secret {
		return map[string]*corev1.Secret{
			"s3-creds": {Data: map[string][]byte{"accessKey": []byte(access), "secretKey": []byte("k")}},
			"htpasswd": {Data: map[string][]byte{"htpasswd": []byte(htpasswd)}},
			"tls":      {Data: map[string][]byte{"tls.crt": []byte(cert), "tls.key": []byte("key")}},
		}
	}
	sum := func(spec berthv1alpha1.RegistrySpec, readOnly bool, s map[string]*corev1.Secret) string {
		reg := registry(spec)
		r, err := Render(reg, readOnly)
		if err != nil {
			t.Fatal(err)
		}
		return Checksum(r, SecretRefs(reg), s)
	}
	want := sum(base, false, secrets("a", "h", "c"))
	replicas := base
	replicas.Log = &berthv1alpha1.RegistryLog{Level: "debug"}

	tests := map[string]struct {
		spec     berthv1alpha1.RegistrySpec
		readOnly bool
		secrets  map[string]*corev1.Secret
		changed  bool
	}{
		"nothing changed":          {base, false, secrets("a", "h", "c"), false},
		"read-only is live":        {base, true, secrets("a", "h", "c"), false},
		"htpasswd file is live":    {base, false, secrets("a", "h2", "c"), false},
		"certificate is live":      {base, false, secrets("a", "h", "c2"), false},
		"an S3 key rolls the pods": {base, false, secrets("a2", "h", "c"), true},
		"a config change rolls":    {replicas, false, secrets("a", "h", "c"), true},
		"a missing Secret differs": {base, false, map[string]*corev1.Secret{}, true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := sum(tt.spec, tt.readOnly, tt.secrets); (got != want) != tt.changed {
				t.Errorf("checksum changed = %v, want %v", got != want, tt.changed)
			}
		})
	}
}

func TestHTPasswd(t *testing.T) {
	users := []berthv1alpha1.HtpasswdUser{{Username: "alice"}, {Username: "bob"}}
	hashes := 0
	counting := func(pw []byte) ([]byte, error) { hashes++; return bcrypt.GenerateFromPassword(pw, bcrypt.MinCost) }

	first, err := HTPasswd(users, map[string][]byte{"alice": []byte("a"), "bob": []byte("b")}, nil, counting)
	if err != nil {
		t.Fatal(err)
	}
	if hashes != 2 || !strings.HasPrefix(string(first), "alice:$2") {
		t.Fatalf("hashes = %d, file = %q", hashes, first)
	}

	tests := map[string]struct {
		passwords  map[string][]byte
		wantHashes int
		same       bool
	}{
		"unchanged passwords keep their hashes": {map[string][]byte{"alice": []byte("a"), "bob": []byte("b")}, 0, true},
		"a changed password is rehashed":        {map[string][]byte{"alice": []byte("a"), "bob": []byte("new")}, 1, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			hashes = 0
			got, err := HTPasswd(users, tt.passwords, first, counting)
			if err != nil {
				t.Fatal(err)
			}
			if hashes != tt.wantHashes || bytes.Equal(got, first) != tt.same {
				t.Errorf("hashes = %d (want %d), same file = %v (want %v)", hashes, tt.wantHashes, bytes.Equal(got, first), tt.same)
			}
			for _, line := range strings.Split(strings.TrimSpace(string(got)), "\n") {
				user, hash, _ := strings.Cut(line, ":")
				if bcrypt.CompareHashAndPassword([]byte(hash), tt.passwords[user]) != nil {
					t.Errorf("hash of %s does not match its password", user)
				}
			}
		})
	}
}

func TestExtraConfigIsCheckedByRegistrydsParser(t *testing.T) {
	tests := map[string]struct {
		extra   string
		wantErr string
	}{
		"a known key":          {`{"storage":{"tag":{"concurrencylimit":4}}}`, ""},
		"an unknown key":       {`{"storage":{"tag":{"concurency":4}}}`, "storage.tag.concurency"},
		"a bad value":          {`{"http":{"draintimeout":"soon"}}`, "http.draintimeout"},
		"a second driver":      {`{"storage":{"s3":{"bucket":"b","region":"r"}}}`, "more than one storage driver"},
		"a removed 2.x key":    {`{"redis":{"addr":"redis:6379"}}`, "redis.addr"},
		"replacing a list key": {`{"http":{"headers":{"X-Frame-Options":["DENY"]}}}`, ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			reg := registry(berthv1alpha1.RegistrySpec{
				Storage:     berthv1alpha1.RegistryStorage{InMemory: &berthv1alpha1.InMemoryStorage{}},
				ExtraConfig: &apiextensionsv1.JSON{Raw: []byte(tt.extra)},
			})
			_, err := Render(reg, false)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Render: %v", err)
				}
				return
			}
			var invalid *InvalidConfigError
			if !errors.As(err, &invalid) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want an InvalidConfigError naming %q", err, tt.wantErr)
			}
		})
	}
}

// TestExtraConfigKeepsNumbersExact renders large integers and durations
// written as nanoseconds through extraConfig and reads the result with
// registryd's parser: every number arrives exactly as written.
func TestExtraConfigKeepsNumbersExact(t *testing.T) {
	reg := registry(berthv1alpha1.RegistrySpec{
		Storage: berthv1alpha1.RegistryStorage{Filesystem: &berthv1alpha1.FilesystemStorage{}},
		ExtraConfig: &apiextensionsv1.JSON{Raw: []byte(`{
			"storage": {"filesystem": {"maxthreads": 1000000}, "tag": {"concurrencylimit": 5242880}},
			"http": {"draintimeout": 3600000000000},
			"notifications": {"endpoints": [{"name": "n", "url": "https://hooks.example.com/", "threshold": 9007199254740993, "backoff": 1500000000}]}
		}`)},
	})
	rendered, err := Render(reg, false)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if strings.Contains(string(rendered.Config), "e+") {
		t.Errorf("config.yml has a number in exponent form:\n%s", rendered.Config)
	}
	cfg, err := configuration.ParseWithEnv(bytes.NewReader(rendered.Config), PlaceholderEnv(rendered.Env))
	if err != nil {
		t.Fatalf("registryd's parser refuses the rendered config.yml: %v\n%s", err, rendered.Config)
	}
	for name, c := range map[string]struct{ got, want any }{
		"storage.filesystem.maxthreads":        {cfg.Storage.Filesystem.MaxThreads, 1000000},
		"storage.tag.concurrencylimit":         {cfg.Storage.Tag.ConcurrencyLimit, 5242880},
		"http.draintimeout":                    {cfg.HTTP.DrainTimeout, time.Hour},
		"notifications.endpoints[0].threshold": {cfg.Notifications.Endpoints[0].Threshold, 9007199254740993},
		"notifications.endpoints[0].backoff":   {cfg.Notifications.Endpoints[0].Backoff, 1500 * time.Millisecond},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", name, c.got, c.want)
		}
	}

	// A fraction where registryd reads an integer is refused, naming the key.
	reg.Spec.ExtraConfig = &apiextensionsv1.JSON{Raw: []byte(`{"storage":{"tag":{"concurrencylimit":2.5}}}`)}
	if _, err := Render(reg, false); err == nil || !strings.Contains(err.Error(), "storage.tag.concurrencylimit") {
		t.Errorf("a fraction for an integer key: %v", err)
	}
}

func TestWorkloadPolicies(t *testing.T) {
	fs := func(modes ...corev1.PersistentVolumeAccessMode) berthv1alpha1.RegistryStorage {
		return berthv1alpha1.RegistryStorage{Filesystem: &berthv1alpha1.FilesystemStorage{AccessModes: modes}}
	}
	tests := map[string]struct {
		spec     berthv1alpha1.RegistrySpec
		strategy appsv1.DeploymentStrategyType
		pdb      bool
		pvc      bool
	}{
		"RWO volume: Recreate, no PDB": {berthv1alpha1.RegistrySpec{Storage: fs(corev1.ReadWriteOnce)}, appsv1.RecreateDeploymentStrategyType, false, true},
		"RWX volume, 3 replicas":       {berthv1alpha1.RegistrySpec{Replicas: ptr.To[int32](3), Storage: fs(corev1.ReadWriteMany)}, appsv1.RollingUpdateDeploymentStrategyType, true, true},
		"S3, 2 replicas":               {berthv1alpha1.RegistrySpec{Replicas: ptr.To[int32](2), Storage: goldenCases["s3"].Storage}, appsv1.RollingUpdateDeploymentStrategyType, true, false},
		"emptyDir, 1 replica":          {berthv1alpha1.RegistrySpec{Storage: berthv1alpha1.RegistryStorage{EmptyDir: &berthv1alpha1.EmptyDirStorage{}}}, appsv1.RollingUpdateDeploymentStrategyType, false, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			reg := registry(tt.spec)
			r, err := Render(reg, false)
			if err != nil {
				t.Fatal(err)
			}
			dep := Deployment(reg, r, "img", "sum")
			if dep.Spec.Strategy.Type != tt.strategy {
				t.Errorf("strategy = %s, want %s", dep.Spec.Strategy.Type, tt.strategy)
			}
			if (PodDisruptionBudget(reg) != nil) != tt.pdb {
				t.Errorf("PDB = %v, want %v", PodDisruptionBudget(reg) != nil, tt.pdb)
			}
			if (PersistentVolumeClaim(reg) != nil) != tt.pvc {
				t.Errorf("PVC = %v, want %v", PersistentVolumeClaim(reg) != nil, tt.pvc)
			}
			for _, m := range dep.Spec.Template.Spec.Containers[0].VolumeMounts {
				if m.SubPath != "" {
					t.Errorf("mount %s uses subPath", m.Name)
				}
			}
		})
	}
}
