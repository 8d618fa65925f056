package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// The report: every benchmark of the package adds rows to one table, which
// TestMain prints once all benchmarks ran and writes as JSON under
// bin/bench/ (a file named by the run's start time, and latest.json).
//
// A row's ratio is always registryd ÷ Distribution of the figure as
// measured, so a throughput wants it high and a duration or a size wants
// it low; the target says which.

// row is one figure of the table.
type row struct {
	Figure string `json:"figure"`
	Unit   string `json:"unit"`
	// Registryd and Distribution are the medians over the rounds;
	// Distribution is absent for figures it has no counterpart of.
	Registryd    float64  `json:"registryd"`
	Distribution *float64 `json:"distribution,omitempty"`
	// Ratio is the median of the per-round ratios registryd ÷
	// Distribution (each round's pair ran back to back), absent without
	// a Distribution figure.
	Ratio *float64 `json:"ratio,omitempty"`
	// Target is the goal in words; Met whether this run reached it
	// (absent for figures without a target).
	Target string `json:"target,omitempty"`
	Met    *bool  `json:"met,omitempty"`
	// Rounds holds every round's values.
	RegistrydRounds    []float64 `json:"registrydRounds,omitempty"`
	DistributionRounds []float64 `json:"distributionRounds,omitempty"`
	// Note says how the figure was taken when the figure's name cannot.
	Note string `json:"note,omitempty"`
}

// limit is a physical limit of the machine measured in the same run.
type limit struct {
	Figure string    `json:"figure"`
	Unit   string    `json:"unit"`
	Value  float64   `json:"value"`
	Rounds []float64 `json:"rounds,omitempty"`
}

// cost is what a workload cost each process, in CPU seconds summed over
// the rounds: the client (this test process) must stay small beside the
// servers for the figures to be the servers'.
type cost struct {
	Workload        string  `json:"workload"`
	WallRegistryd   float64 `json:"wallSecondsRegistryd"`
	WallDist        float64 `json:"wallSecondsDistribution"`
	ClientRegistryd float64 `json:"clientCPUSecondsRegistryd"`
	ClientDist      float64 `json:"clientCPUSecondsDistribution"`
	ServerRegistryd float64 `json:"serverCPUSecondsRegistryd"`
	ServerDist      float64 `json:"serverCPUSecondsDistribution"`
}

// loadSample is the load average at a moment of the run.
type loadSample struct {
	At    time.Time `json:"at"`
	What  string    `json:"what"`
	Load1 float64   `json:"load1"`
	Load5 float64   `json:"load5"`
}

type report struct {
	mu      sync.Mutex
	started time.Time
	rows    []row
	limits  []limit
	costs   []cost
	loads   []loadSample
	notes   []string
}

var results = &report{started: time.Now()}

// addRow adds r, replacing an earlier row of the same figure (a benchmark
// the framework runs twice reports its last run).
func (rp *report) addRow(r row) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if i := slices.IndexFunc(rp.rows, func(o row) bool { return o.Figure == r.Figure }); i >= 0 {
		rp.rows[i] = r
		return
	}
	rp.rows = append(rp.rows, r)
}

func (rp *report) addLimit(l limit) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if i := slices.IndexFunc(rp.limits, func(o limit) bool { return o.Figure == l.Figure }); i >= 0 {
		rp.limits[i] = l
		return
	}
	rp.limits = append(rp.limits, l)
}

func (rp *report) addCost(c cost) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if i := slices.IndexFunc(rp.costs, func(o cost) bool { return o.Workload == c.Workload }); i >= 0 {
		rp.costs[i] = c
		return
	}
	rp.costs = append(rp.costs, c)
}

func (rp *report) addNote(format string, args ...any) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.notes = append(rp.notes, fmt.Sprintf(format, args...))
}

// sampleLoad records the load average now.
func (rp *report) sampleLoad(what string) loadSample {
	s := loadSample{At: time.Now(), What: what}
	if raw, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(raw)); len(f) >= 2 {
			s.Load1, _ = strconv.ParseFloat(f[0], 64)
			s.Load5, _ = strconv.ParseFloat(f[1], 64)
		}
	}
	rp.mu.Lock()
	rp.loads = append(rp.loads, s)
	rp.mu.Unlock()
	return s
}

func (rp *report) empty() bool {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return len(rp.rows) == 0 && len(rp.limits) == 0
}

// compared builds the row of a figure measured on both registries over
// rounds (equal lengths); higher says whether a higher value is better,
// and target is the least (higher) or most (lower) ratio wanted, 0 for
// none.
func compared(figure, unit string, reg, dist []float64, higher bool, target float64) row {
	r := row{Figure: figure, Unit: unit, Registryd: median(reg), RegistrydRounds: reg, DistributionRounds: dist}
	d := median(dist)
	r.Distribution = &d
	ratios := make([]float64, 0, len(reg))
	for i := range min(len(reg), len(dist)) {
		if dist[i] != 0 {
			ratios = append(ratios, reg[i]/dist[i])
		}
	}
	if len(ratios) > 0 {
		q := median(ratios)
		r.Ratio = &q
	}
	if target > 0 && r.Ratio != nil {
		met := *r.Ratio >= target
		r.Target = fmt.Sprintf("≥ %s×", trimFloat(target))
		if !higher {
			met = *r.Ratio <= target
			r.Target = fmt.Sprintf("≤ %s×", trimFloat(target))
		}
		r.Met = &met
	}
	return r
}

// single builds the row of a figure registryd alone has. atLeast says
// whether target is a floor (else a ceiling); targetText empty means no
// target.
func single(figure, unit string, values []float64, atLeast bool, target float64, targetText string) row {
	r := row{Figure: figure, Unit: unit, Registryd: median(values), RegistrydRounds: values}
	if targetText != "" {
		met := r.Registryd >= target
		if !atLeast {
			met = r.Registryd <= target
		}
		r.Target, r.Met = targetText, &met
	}
	return r
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func trimFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// format prints a figure with three significant digits.
func format(f float64) string {
	switch a := math.Abs(f); {
	case math.IsNaN(f):
		return "—"
	case a == 0:
		return "0"
	case a >= 100:
		return strconv.FormatFloat(f, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(f, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(f, 'f', 2, 64)
	default:
		return strconv.FormatFloat(f, 'g', 3, 64)
	}
}

// machine describes where the run happened.
type machine struct {
	CPU       string `json:"cpu"`
	CPUs      int    `json:"cpus"`
	MemoryGiB int    `json:"memoryGiB"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"goVersion"`
	// TempFS is the filesystem the registries' storage and the limits'
	// files were on.
	TempFS string `json:"tempFilesystem"`
}

func describeMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(raw)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(raw)) {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				kib, _ := strconv.ParseInt(f[1], 10, 64)
				m.MemoryGiB = int(math.Round(float64(kib) / (1 << 20)))
			}
		}
	}
	if raw, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(raw))
	}
	if out, err := exec.Command("df", "--output=fstype,source", os.TempDir()).Output(); err == nil {
		if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) == 2 {
			m.TempFS = strings.Join(strings.Fields(lines[1]), " on ")
		}
	}
	return m
}

// print writes the table.
func (rp *report) print(w io.Writer, m machine) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	fmt.Fprintf(w, "\nberth bench, %s — %s, %d CPUs, %d GiB, storage on %s, %s\n",
		rp.started.Format("2006-01-02 15:04 MST"), m.CPU, m.CPUs, m.MemoryGiB, m.TempFS, m.GoVersion)
	if len(rp.loads) > 0 {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, l := range rp.loads {
			lo, hi = min(lo, l.Load1), max(hi, l.Load1)
		}
		fmt.Fprintf(w, "load average (1 min) during the run: %s to %s\n", format(lo), format(hi))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tregistryd\tDistribution\tratio\ttarget\tmet")
	for _, r := range rp.rows {
		dist, ratio, met := "—", "—", ""
		if r.Distribution != nil {
			dist = format(*r.Distribution)
		}
		if r.Ratio != nil {
			ratio = format(*r.Ratio) + "×"
		}
		if r.Met != nil {
			met = map[bool]string{true: "yes", false: "NO"}[*r.Met]
		}
		target := r.Target
		if target == "" {
			target = "—"
		}
		fmt.Fprintf(tw, "%s (%s)\t%s\t%s\t%s\t%s\t%s\n", r.Figure, r.Unit, format(r.Registryd), dist, ratio, target, met)
	}
	if len(rp.limits) > 0 {
		fmt.Fprintln(tw, "\t\t\t\t\t")
		fmt.Fprintln(tw, "machine limit, same run\tvalue\t\t\t\t")
		for _, l := range rp.limits {
			fmt.Fprintf(tw, "%s (%s)\t%s\t\t\t\t\n", l.Figure, l.Unit, format(l.Value))
		}
	}
	tw.Flush()
	if len(rp.costs) > 0 {
		fmt.Fprintln(w, "\nCPU seconds per workload, all rounds (client = this process, the load generator):")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "workload\twall reg\tclient reg\tserver reg\twall dist\tclient dist\tserver dist")
		for _, c := range rp.costs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Workload,
				format(c.WallRegistryd), format(c.ClientRegistryd), format(c.ServerRegistryd),
				format(c.WallDist), format(c.ClientDist), format(c.ServerDist))
		}
		tw.Flush()
	}
	for _, n := range rp.notes {
		fmt.Fprintln(w, "note:", n)
	}
}

// write stores the report as JSON under dir, as <start time>.json and
// latest.json, and returns the first path.
func (rp *report) write(dir string, m machine) (string, error) {
	rp.mu.Lock()
	doc := struct {
		Started time.Time    `json:"started"`
		Ended   time.Time    `json:"ended"`
		Machine machine      `json:"machine"`
		Rows    []row        `json:"rows"`
		Limits  []limit      `json:"limits"`
		Costs   []cost       `json:"costs"`
		Load    []loadSample `json:"loadAverage"`
		Notes   []string     `json:"notes,omitempty"`
	}{rp.started, time.Now(), m, rp.rows, rp.limits, rp.costs, rp.loads, rp.notes}
	raw, err := json.MarshalIndent(doc, "", "  ")
	rp.mu.Unlock()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	p := filepath.Join(dir, rp.started.UTC().Format("20060102T150405Z")+".json")
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		return "", err
	}
	return p, os.WriteFile(filepath.Join(dir, "latest.json"), raw, 0o644)
}

// TestMain runs the benchmarks, then prints and stores the report. With
// managerEnv set, the process is instead the operator's manager of
// BenchmarkOperatorScale (operator_test.go).
func TestMain(m *testing.M) {
	if os.Getenv(managerEnv) != "" {
		os.Exit(runManager())
	}
	code := m.Run()
	// The object-store emulators BenchmarkPushPull started (testutil.Main).
	testutil.StopPeers()
	if !results.empty() {
		mach := describeMachine()
		results.print(os.Stdout, mach)
		dir := filepath.Join(repoRoot(), "bin", "bench")
		if p, err := results.write(dir, mach); err != nil {
			fmt.Fprintln(os.Stderr, "writing the report:", err)
			code = max(code, 1)
		} else {
			fmt.Println("\nreport:", p)
		}
	}
	os.Exit(code)
}

// repoRoot is the repository's top directory (testutil.RepoRoot needs a
// test; TestMain has none).
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}
