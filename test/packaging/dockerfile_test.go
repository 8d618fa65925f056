package packaging

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestDockerfile checks what can be checked without a Docker engine: the
// Dockerfile builds with the Makefile's flags and gives each image the
// entrypoint, user and port `make images` gives it.
func TestDockerfile(t *testing.T) {
	root := testutil.RepoRoot(t)
	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	dockerfile, makefile := read("Dockerfile"), read("Makefile")

	// Stages by name: the instructions from `FROM image AS name` to the next
	// FROM, and the image each starts from.
	stages, from := map[string]string{}, map[string]string{}
	for _, s := range regexp.MustCompile(`(?m)^FROM `).Split(dockerfile, -1)[1:] {
		header, body, _ := strings.Cut(s, "\n")
		if f := strings.Fields(header); len(f) == 3 && strings.EqualFold(f[1], "AS") {
			stages[f[2]], from[f[2]] = body, f[0]
		}
	}

	m := regexp.MustCompile(`(?m)^LDFLAGS := (.*)$`).FindStringSubmatch(makefile)
	if m == nil {
		t.Fatal("no LDFLAGS in the Makefile")
	}
	ldflags := strings.ReplaceAll(m[1], "$(VERSION)", "${VERSION}")
	if !strings.Contains(stages["deps"], `LDFLAGS="`+ldflags+`"`) || !strings.Contains(stages["deps"], "CGO_ENABLED=0") {
		t.Errorf("Dockerfile deps stage does not build with CGO_ENABLED=0 and the Makefile's LDFLAGS %q", ldflags)
	}

	tests := map[string]struct {
		stage      []string // what the image's stage holds
		build      string   // what its build stage holds
		makeImages string   // what `make images` passes imgbuild for it
	}{
		"manager": {
			stage:      []string{"COPY --from=build-manager /out/manager /manager", `ENTRYPOINT ["/manager"]`},
			build:      `go build -trimpath -ldflags "${LDFLAGS}" -o /out/manager .`,
			makeImages: "-entrypoint /manager",
		},
		"registryd": {
			stage:      []string{"COPY --from=build-registryd /out/registryd /registryd", `ENTRYPOINT ["/registryd"]`, `CMD ["serve"]`, "EXPOSE 5000"},
			build:      `go build -trimpath -ldflags "${LDFLAGS}" -o /out/registryd ./registryd`,
			makeImages: "-entrypoint /registryd -arg serve -port 5000/tcp",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			body, ok := stages[name]
			if !ok {
				t.Fatalf("no stage %q in the Dockerfile", name)
			}
			if from[name] != "base" {
				t.Errorf("stage %s starts from %s, want base", name, from[name])
			}
			for _, want := range tc.stage {
				if !strings.Contains(body, want) {
					t.Errorf("stage %s lacks %s", name, want)
				}
			}
			if !strings.Contains(stages["build-"+name], tc.build) {
				t.Errorf("stage build-%s lacks %s", name, tc.build)
			}
			// Until `make images` exists there is nothing to keep in step with.
			if strings.Contains(makefile, "\nimages:") && !strings.Contains(makefile, tc.makeImages) {
				t.Errorf("make images no longer builds %s with %q: bring the Dockerfile in step", name, tc.makeImages)
			}
		})
	}
	if from["base"] != "scratch" || !strings.Contains(stages["base"], "USER 65532:65532") {
		t.Errorf("Dockerfile base stage starts from %q, want scratch running as 65532:65532", from["base"])
	}
}
