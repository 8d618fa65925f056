package builders

import (
	"bytes"
	"testing"
	"time"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/registryd/configuration"
)

// TestTerminationLeavesTimeToDrain: a registryd pod keeps serving for
// PreStopDelay after it starts terminating, then drains for the config's
// http.draintimeout, and is killed only after both and a margin — what a
// rolling update without failed requests needs.
func TestTerminationLeavesTimeToDrain(t *testing.T) {
	tests := map[string]struct {
		http      *berthv1alpha1.RegistryHTTP
		drain     time.Duration
		graceSecs int64
	}{
		"default drain":  {nil, DefaultDrainTimeout, 50},
		"spec drain":     {&berthv1alpha1.RegistryHTTP{DrainTimeout: &berthv1alpha1.Duration{Duration: 2 * time.Minute}}, 2 * time.Minute, 140},
		"no drain asked": {&berthv1alpha1.RegistryHTTP{DrainTimeout: &berthv1alpha1.Duration{}}, 0, 20},
		"http, no drain": {&berthv1alpha1.RegistryHTTP{RelativeURLs: true}, DefaultDrainTimeout, 50},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			reg := registry(berthv1alpha1.RegistrySpec{
				Storage: berthv1alpha1.RegistryStorage{InMemory: &berthv1alpha1.InMemoryStorage{}},
				HTTP:    tt.http,
			})
			rendered, err := Render(reg, false)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := configuration.ParseWithEnv(bytes.NewReader(rendered.Config), PlaceholderEnv(rendered.Env))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.HTTP.DrainTimeout != tt.drain {
				t.Errorf("http.draintimeout = %s, want %s", cfg.HTTP.DrainTimeout, tt.drain)
			}
			pod := Deployment(reg, rendered, "registryd:test", "sum").Spec.Template.Spec
			if g := pod.TerminationGracePeriodSeconds; g == nil || *g != tt.graceSecs {
				t.Errorf("terminationGracePeriodSeconds = %v, want %d", g, tt.graceSecs)
			}
			lc := pod.Containers[0].Lifecycle
			if lc == nil || lc.PreStop == nil || lc.PreStop.Sleep == nil || lc.PreStop.Sleep.Seconds != int64(PreStopDelay.Seconds()) {
				t.Errorf("preStop = %+v, want a sleep of %s", lc, PreStopDelay)
			}
		})
	}
}
