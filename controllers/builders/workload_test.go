package builders

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
)

// newReg is a Registry "reg" in namespace "ns".
func newReg(spec berthv1alpha1.RegistrySpec) *berthv1alpha1.Registry {
	return &berthv1alpha1.Registry{ObjectMeta: metav1.ObjectMeta{Name: "reg", Namespace: "ns"}, Spec: spec}
}

func TestService(t *testing.T) {
	httpPort := func(port, nodePort int32) corev1.ServicePort {
		return corev1.ServicePort{Name: "http", Port: port, NodePort: nodePort, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}
	}
	debug := corev1.ServicePort{Name: "debug", Port: 5001, TargetPort: intstr.FromString("debug"), Protocol: corev1.ProtocolTCP}
	tests := map[string]struct {
		spec  berthv1alpha1.RegistrySpec
		typ   corev1.ServiceType
		ports []corev1.ServicePort
	}{
		"default: ClusterIP on 5000": {typ: corev1.ServiceTypeClusterIP, ports: []corev1.ServicePort{httpPort(5000, 0)}},
		"port and annotations": {
			spec: berthv1alpha1.RegistrySpec{Service: berthv1alpha1.RegistryService{Port: 443, Annotations: map[string]string{"a": "b"}}},
			typ:  corev1.ServiceTypeClusterIP, ports: []corev1.ServicePort{httpPort(443, 0)},
		},
		"a nodePort is ignored on ClusterIP": {
			spec: berthv1alpha1.RegistrySpec{Service: berthv1alpha1.RegistryService{NodePort: 30500}},
			typ:  corev1.ServiceTypeClusterIP, ports: []corev1.ServicePort{httpPort(5000, 0)},
		},
		"NodePort keeps its nodePort": {
			spec: berthv1alpha1.RegistrySpec{Service: berthv1alpha1.RegistryService{Type: corev1.ServiceTypeNodePort, NodePort: 30500}},
			typ:  corev1.ServiceTypeNodePort, ports: []corev1.ServicePort{httpPort(5000, 30500)},
		},
		"metrics add the debug port": {
			spec: berthv1alpha1.RegistrySpec{Metrics: &berthv1alpha1.RegistryMetrics{Enabled: true}},
			typ:  corev1.ServiceTypeClusterIP, ports: []corev1.ServicePort{httpPort(5000, 0), debug},
		},
		"metrics off: no debug port": {
			spec: berthv1alpha1.RegistrySpec{Metrics: &berthv1alpha1.RegistryMetrics{Enabled: false}},
			typ:  corev1.ServiceTypeClusterIP, ports: []corev1.ServicePort{httpPort(5000, 0)},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			r := newReg(tt.spec)
			svc := Service(r)
			if svc.Name != "reg" || svc.Namespace != "ns" || svc.Kind != "Service" || svc.APIVersion != "v1" {
				t.Errorf("object = %s/%s %s %s", svc.Namespace, svc.Name, svc.APIVersion, svc.Kind)
			}
			if svc.Spec.Type != tt.typ {
				t.Errorf("type = %q, want %q", svc.Spec.Type, tt.typ)
			}
			if !reflect.DeepEqual(svc.Spec.Ports, tt.ports) {
				t.Errorf("ports = %+v\nwant %+v", svc.Spec.Ports, tt.ports)
			}
			if !reflect.DeepEqual(svc.Spec.Selector, SelectorLabels(r)) {
				t.Errorf("selector = %v, want the pods' %v", svc.Spec.Selector, SelectorLabels(r))
			}
			if !reflect.DeepEqual(svc.Annotations, tt.spec.Service.Annotations) {
				t.Errorf("annotations = %v, want %v", svc.Annotations, tt.spec.Service.Annotations)
			}
		})
	}
}

func TestServiceMonitor(t *testing.T) {
	for name, m := range map[string]*berthv1alpha1.RegistryMetrics{
		"no metrics":         nil,
		"metrics off":        {Enabled: false, ServiceMonitor: &berthv1alpha1.ServiceMonitorSpec{Enabled: true}},
		"no ServiceMonitor":  {Enabled: true},
		"ServiceMonitor off": {Enabled: true, ServiceMonitor: &berthv1alpha1.ServiceMonitorSpec{Enabled: false}},
	} {
		if sm := ServiceMonitor(newReg(berthv1alpha1.RegistrySpec{Metrics: m})); sm != nil {
			t.Errorf("%s: ServiceMonitor = %v, want none", name, sm.Object)
		}
	}

	reg := newReg(berthv1alpha1.RegistrySpec{Metrics: &berthv1alpha1.RegistryMetrics{Enabled: true, ServiceMonitor: &berthv1alpha1.ServiceMonitorSpec{
		Enabled: true, Interval: "30s", Labels: map[string]string{"release": "prom", "app.kubernetes.io/managed-by": "overridden"}}}})
	sm := ServiceMonitor(reg)
	if sm == nil {
		t.Fatal("no ServiceMonitor")
	}
	if gvk := sm.GroupVersionKind(); gvk.Group != "monitoring.coreos.com" || gvk.Version != "v1" || gvk.Kind != "ServiceMonitor" {
		t.Errorf("GVK = %v", gvk)
	}
	if sm.GetName() != "reg" || sm.GetNamespace() != "ns" {
		t.Errorf("name = %s/%s", sm.GetNamespace(), sm.GetName())
	}
	labels := sm.GetLabels()
	if labels["release"] != "prom" || labels["app.kubernetes.io/managed-by"] != "overridden" {
		t.Errorf("labels = %v: the spec's labels are added to (and win over) the operator's", labels)
	}
	selector, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	if !reflect.DeepEqual(selector, SelectorLabels(reg)) {
		t.Errorf("selector = %v, want the Service's %v", selector, SelectorLabels(reg))
	}
	endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	want := []any{map[string]any{"port": DebugPortName, "path": "/metrics", "interval": "30s"}}
	if !reflect.DeepEqual(endpoints, want) {
		t.Errorf("endpoints = %v, want %v (the Service's debug port)", endpoints, want)
	}

	reg.Spec.Metrics.ServiceMonitor.Interval = ""
	endpoints, _, _ = unstructured.NestedSlice(ServiceMonitor(reg).Object, "spec", "endpoints")
	if _, ok := endpoints[0].(map[string]any)["interval"]; ok {
		t.Errorf("endpoints = %v: no interval unless the spec sets one (Prometheus' default)", endpoints)
	}
	if _, err := runtimeJSON(sm); err != nil {
		t.Errorf("the ServiceMonitor does not serialise: %v", err)
	}
}

// runtimeJSON serialises u as the client does when it applies it.
func runtimeJSON(u *unstructured.Unstructured) ([]byte, error) { return u.MarshalJSON() }

func TestCertificate(t *testing.T) {
	if c := Certificate(newReg(berthv1alpha1.RegistrySpec{})); c != nil {
		t.Errorf("without TLS: Certificate = %v", c.Object)
	}
	if c := Certificate(newReg(berthv1alpha1.RegistrySpec{TLS: &berthv1alpha1.RegistryTLS{SecretName: "mine"}})); c != nil {
		t.Errorf("TLS from the user's Secret: Certificate = %v, want none", c.Object)
	}

	tests := map[string]struct {
		tls                 berthv1alpha1.RegistryTLS
		secret, kind, group string
		extraDNS            []any
	}{
		"defaults": {
			tls:    berthv1alpha1.RegistryTLS{IssuerRef: &berthv1alpha1.IssuerRef{Name: "ca"}},
			secret: "reg-tls", kind: "Issuer", group: "cert-manager.io",
		},
		"cluster issuer, secret name and extra names": {
			tls: berthv1alpha1.RegistryTLS{SecretName: "serving", DNSNames: []string{"registry.example.com"},
				IssuerRef: &berthv1alpha1.IssuerRef{Name: "le", Kind: "ClusterIssuer", Group: "example.io"}},
			secret: "serving", kind: "ClusterIssuer", group: "example.io", extraDNS: []any{"registry.example.com"},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			reg := newReg(berthv1alpha1.RegistrySpec{TLS: &tt.tls})
			c := Certificate(reg)
			if c == nil {
				t.Fatal("no Certificate")
			}
			if gvk := c.GroupVersionKind(); gvk.Group != "cert-manager.io" || gvk.Version != "v1" || gvk.Kind != "Certificate" {
				t.Errorf("GVK = %v", gvk)
			}
			if c.GetName() != "reg" || c.GetNamespace() != "ns" || !reflect.DeepEqual(c.GetLabels(), Labels(reg)) {
				t.Errorf("metadata = %s/%s %v", c.GetNamespace(), c.GetName(), c.GetLabels())
			}
			spec := c.Object["spec"].(map[string]any)
			if spec["secretName"] != tt.secret || spec["secretName"] != TLSSecretName(reg) {
				t.Errorf("secretName = %v, want %s (what registryd mounts)", spec["secretName"], tt.secret)
			}
			wantDNS := append([]any{"reg", "reg.ns", "reg.ns.svc", "reg.ns.svc.cluster.local"}, tt.extraDNS...)
			if !reflect.DeepEqual(spec["dnsNames"], wantDNS) {
				t.Errorf("dnsNames = %v, want %v", spec["dnsNames"], wantDNS)
			}
			wantIssuer := map[string]any{"name": tt.tls.IssuerRef.Name, "kind": tt.kind, "group": tt.group}
			if !reflect.DeepEqual(spec["issuerRef"], wantIssuer) {
				t.Errorf("issuerRef = %v, want %v", spec["issuerRef"], wantIssuer)
			}
			if _, err := runtimeJSON(c); err != nil {
				t.Errorf("the Certificate does not serialise: %v", err)
			}
		})
	}
}

func TestURL(t *testing.T) {
	tls := &berthv1alpha1.RegistryTLS{SecretName: "s"}
	for _, tt := range []struct {
		spec berthv1alpha1.RegistrySpec
		want string
	}{
		{berthv1alpha1.RegistrySpec{}, "http://reg.ns.svc:5000"},
		{berthv1alpha1.RegistrySpec{Service: berthv1alpha1.RegistryService{Port: 80}}, "http://reg.ns.svc"},
		{berthv1alpha1.RegistrySpec{Service: berthv1alpha1.RegistryService{Port: 443}}, "http://reg.ns.svc:443"},
		{berthv1alpha1.RegistrySpec{TLS: tls}, "https://reg.ns.svc:5000"},
		{berthv1alpha1.RegistrySpec{TLS: tls, Service: berthv1alpha1.RegistryService{Port: 443}}, "https://reg.ns.svc"},
		{berthv1alpha1.RegistrySpec{TLS: tls, Service: berthv1alpha1.RegistryService{Port: 80}}, "https://reg.ns.svc:80"},
		{berthv1alpha1.RegistrySpec{HTTP: &berthv1alpha1.RegistryHTTP{Prefix: "/mirror/"}}, "http://reg.ns.svc:5000/mirror/"},
	} {
		if got := URL(newReg(tt.spec)); got != tt.want {
			t.Errorf("URL(%+v) = %q, want %q", tt.spec, got, tt.want)
		}
	}
}
