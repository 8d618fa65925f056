package v1alpha1

import (
	"encoding/json"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
)

// A duration field is a string in Go syntax on the wire, exactly as it was
// when the fields were metav1.Duration: manifests written then still apply.
func TestDurationJSON(t *testing.T) {
	var p RegistryProxy
	if err := json.Unmarshal([]byte(`{"remoteURL":"https://r.example","ttl":"1h30m"}`), &p); err != nil {
		t.Fatal(err)
	}
	if p.TTL == nil || p.TTL.Duration != 90*time.Minute {
		t.Fatalf("ttl = %v, want 1h30m", p.TTL)
	}
	out, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"remoteURL":"https://r.example","ttl":"1h30m0s"}`; string(out) != want {
		t.Fatalf("marshal = %s, want %s", out, want)
	}
	if err := json.Unmarshal([]byte(`{"ttl":"1 day"}`), &p); err == nil {
		t.Fatal(`"1 day" was accepted`)
	}
	if err := json.Unmarshal([]byte(`{"ttl":5}`), &p); err == nil {
		t.Fatal("a number was accepted")
	}
}

// The controllers hand typed objects to the unstructured converter (server-
// side apply, fake clients); a duration must come out as the same string.
func TestDurationUnstructured(t *testing.T) {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&GarbageCollectionSpec{
		RegistryName: "r", Timeout: &Duration{Duration: 10 * time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	if got := u["timeout"]; got != "10m0s" {
		t.Fatalf("timeout = %#v, want \"10m0s\"", got)
	}
	var back GarbageCollectionSpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u, &back); err != nil {
		t.Fatal(err)
	}
	if back.Timeout == nil || back.Timeout.Duration != 10*time.Minute {
		t.Fatalf("round trip timeout = %v", back.Timeout)
	}
}
