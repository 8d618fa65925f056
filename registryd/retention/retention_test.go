package retention

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// gen generates n tags named by format (with 0..n-1), the last one pushed
// an hour before now, each an interval older than the next.
func gen(format string, n int, interval time.Duration) []Tag {
	out := make([]Tag, n)
	for i := range n {
		name := fmt.Sprintf(format, i)
		out[i] = Tag{Name: name, Digest: digest.FromString(name), Pushed: now.Add(-time.Hour - time.Duration(n-1-i)*interval)}
	}
	return out
}

func concat(lists ...[]Tag) []Tag { return slices.Concat(lists...) }

// names lists tags named by format for each i.
func names(format string, is ...int) []string {
	out := make([]string, len(is))
	for k, i := range is {
		out[k] = fmt.Sprintf(format, i)
	}
	return out
}

func span(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func policy(t *testing.T, rules ...Rule) *Compiled {
	t.Helper()
	c, err := Policy{Rules: rules}.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func intp(n int) *int { return &n }

const semver = `v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?`

func TestApply(t *testing.T) {
	day := 24 * time.Hour
	builds := gen("build-%d", 30, time.Hour)
	releases := []Tag{
		{Name: "v1.0.0", Pushed: now.Add(-300 * day)},
		{Name: "1.2.3", Pushed: now.Add(-200 * day)},
		{Name: "v2.0.0-rc.1", Pushed: now.Add(-2 * time.Hour)},
	}
	latest := Tag{Name: "latest", Pushed: now.Add(-100 * day)}
	nightlies := gen("nightly-%02d", 30, day) // nightly-29 is 1h old, nightly-00 29 days and 1h
	tests := map[string]struct {
		rules []Rule
		repo  string
		tags  []Tag
		// want: deleted tag names; kept reasons of some tags; the rule.
		deleted []string
		reasons map[string]Reason
		rule    int
		guarded bool
	}{
		"keep the 10 newest builds and every semver tag": {
			rules: []Rule{{Repositories: []string{"ci/**"}, KeepTags: []string{semver}, KeepMostRecentlyPushed: intp(10)}},
			repo:  "ci/app", tags: concat(builds, releases, []Tag{latest}),
			// latest is not special: older than the 10 newest builds.
			deleted: append(names("build-%d", span(0, 20)...), "latest"),
			reasons: map[string]Reason{"v1.0.0": KeptByName, "1.2.3": KeptByName, "v2.0.0-rc.1": KeptByName, "build-29": KeptMostRecent, "build-20": KeptMostRecent},
		},
		"latest kept when the rule says so": {
			rules: []Rule{{Repositories: []string{"ci/**"}, KeepTags: []string{semver, "latest"}, KeepMostRecentlyPushed: intp(10)}},
			repo:  "ci/app", tags: concat(builds, releases, []Tag{latest}),
			deleted: names("build-%d", span(0, 20)...),
			reasons: map[string]Reason{"latest": KeptByName},
		},
		"drop nightly tags older than 14 days": {
			rules: []Rule{{Repositories: []string{"**"}, PruneTags: []string{"nightly-.*"}, KeepPushedWithin: "336h"}},
			repo:  "team/web", tags: concat(nightlies, releases, []Tag{latest}),
			// nightly-16 is 13 days 1 hour old; nightly-15 14 days 1 hour.
			deleted: names("nightly-%02d", span(0, 16)...),
			reasons: map[string]Reason{"nightly-16": KeptPushedWithin, "nightly-29": KeptPushedWithin, "latest": KeptNotSelected, "v1.0.0": KeptNotSelected},
		},
		"pushed within is exclusive of its bound": {
			rules:   []Rule{{Repositories: []string{"a"}, PruneTags: []string{".*"}, KeepPushedWithin: "2h"}},
			repo:    "a",
			tags:    []Tag{{Name: "exact", Pushed: now.Add(-2 * time.Hour)}, {Name: "inside", Pushed: now.Add(-2*time.Hour + time.Second)}},
			deleted: []string{"exact"},
			reasons: map[string]Reason{"inside": KeptPushedWithin},
		},
		"a tag pushed after the run started is within any duration": {
			rules:   []Rule{{Repositories: []string{"a"}, PruneTags: []string{".*"}, KeepPushedWithin: "1s"}},
			repo:    "a",
			tags:    []Tag{{Name: "skewed", Pushed: now.Add(time.Minute)}, {Name: "old", Pushed: now.Add(-time.Hour)}},
			deleted: []string{"old"},
		},
		"counts and durations together: either keeps": {
			rules: []Rule{{Repositories: []string{"**"}, KeepMostRecentlyPushed: intp(3), KeepPushedWithin: "5h"}},
			repo:  "x", tags: builds,
			// 3 newest by count (27..29), then pushed within 5h: build-25 is 5h old (not within), build-26 4h.
			deleted: names("build-%d", span(0, 26)...),
			reasons: map[string]Reason{"build-29": KeptMostRecent, "build-27": KeptMostRecent, "build-26": KeptPushedWithin},
		},
		"count larger than the tags keeps all": {
			rules: []Rule{{Repositories: []string{"**"}, KeepMostRecentlyPushed: intp(100)}},
			repo:  "x", tags: builds,
		},
		"keepMostRecentlyPushed 0 keeps nothing by count": {
			rules: []Rule{{Repositories: []string{"**"}, KeepTags: []string{"build-1.*"}, KeepMostRecentlyPushed: intp(0)}},
			repo:  "x", tags: gen("build-%d", 3, time.Hour),
			deleted: []string{"build-0", "build-2"},
		},
		"count ties broken by name": {
			rules: []Rule{{Repositories: []string{"**"}, KeepMostRecentlyPushed: intp(2)}},
			repo:  "x",
			tags:  []Tag{{Name: "c", Pushed: now.Add(-time.Hour)}, {Name: "b", Pushed: now.Add(-time.Hour)}, {Name: "a", Pushed: now.Add(-time.Hour)}, {Name: "z", Pushed: now}},
			// z newest, then a (name order among equals).
			deleted: []string{"b", "c"},
		},
		"tag patterns match the whole tag": {
			rules:   []Rule{{Repositories: []string{"**"}, PruneTags: []string{"tmp"}, DeleteLastTag: true}},
			repo:    "x",
			tags:    []Tag{{Name: "tmp"}, {Name: "tmp-1"}, {Name: "my-tmp"}},
			deleted: []string{"tmp"},
			reasons: map[string]Reason{"tmp-1": KeptNotSelected, "my-tmp": KeptNotSelected},
		},
		"keepTags wins over pruneTags": {
			rules:   []Rule{{Repositories: []string{"**"}, PruneTags: []string{"pr-.*"}, KeepTags: []string{"pr-1"}}},
			repo:    "x",
			tags:    []Tag{{Name: "pr-1"}, {Name: "pr-2"}, {Name: "main"}},
			deleted: []string{"pr-2"},
			reasons: map[string]Reason{"pr-1": KeptByName, "main": KeptNotSelected},
		},
		"first matching rule wins": {
			rules: []Rule{
				{Repositories: []string{"team/keep-all"}, KeepMostRecentlyPushed: intp(1000)},
				{Repositories: []string{"team/*"}, KeepMostRecentlyPushed: intp(1)},
			},
			repo: "team/keep-all", tags: builds,
			rule: 0,
		},
		"a later rule applies when the earlier does not match": {
			rules: []Rule{
				{Repositories: []string{"team/keep-all"}, KeepMostRecentlyPushed: intp(1000)},
				{Repositories: []string{"other", "team/*"}, KeepMostRecentlyPushed: intp(1)},
			},
			repo: "team/app", tags: gen("b%d", 3, time.Hour),
			rule: 1, deleted: []string{"b0", "b1"},
		},
		"single star stays within a component": {
			rules: []Rule{{Repositories: []string{"team/*"}, KeepMostRecentlyPushed: intp(1)}},
			repo:  "team/app/sub", tags: gen("b%d", 3, time.Hour),
			rule: -1,
		},
		"no rule matches: untouched": {
			rules: []Rule{{Repositories: []string{"ci/**"}, KeepMostRecentlyPushed: intp(1)}},
			repo:  "prod/app", tags: builds,
			rule: -1,
		},
		"empty policy: untouched": {
			repo: "prod/app", tags: builds,
			rule: -1,
		},
		"no guard when the rule keeps a tag": {
			rules:   []Rule{{Repositories: []string{"**"}, PruneTags: []string{"nightly-.*"}, KeepPushedWithin: "24h"}},
			repo:    "nightly-only",
			tags:    gen("nightly-%02d", 5, 7*day), // nightly-04 is an hour old, the others a week apart
			deleted: names("nightly-%02d", 0, 1, 2, 3),
			reasons: map[string]Reason{"nightly-04": KeptPushedWithin},
		},
		"last-tag guard keeps the newest when all are old": {
			rules:   []Rule{{Repositories: []string{"**"}, PruneTags: []string{"nightly-.*"}, KeepPushedWithin: "30m"}},
			repo:    "nightly-only",
			tags:    gen("nightly-%02d", 5, 7*day),
			deleted: names("nightly-%02d", 0, 1, 2, 3),
			reasons: map[string]Reason{"nightly-04": KeptLastTag},
			guarded: true,
		},
		"last-tag guard when every tag would go": {
			rules: []Rule{{Repositories: []string{"**"}, PruneTags: []string{".*"}}},
			repo:  "x", tags: gen("t%d", 4, time.Hour),
			deleted: []string{"t0", "t1", "t2"},
			reasons: map[string]Reason{"t3": KeptLastTag},
			guarded: true,
		},
		"deleteLastTag lets every tag go": {
			rules: []Rule{{Repositories: []string{"**"}, PruneTags: []string{".*"}, DeleteLastTag: true}},
			repo:  "x", tags: gen("t%d", 4, time.Hour),
			deleted: []string{"t0", "t1", "t2", "t3"},
		},
		"no guard when a tag the rule does not select stays": {
			rules: []Rule{{Repositories: []string{"**"}, PruneTags: []string{"t.*"}}},
			repo:  "x", tags: concat(gen("t%d", 2, time.Hour), []Tag{latest}),
			deleted: []string{"t0", "t1"},
			reasons: map[string]Reason{"latest": KeptNotSelected},
		},
		"a repository without tags": {
			rules: []Rule{{Repositories: []string{"**"}, PruneTags: []string{".*"}}},
			repo:  "empty",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := policy(t, tc.rules...)
			// The order tags are listed in does not matter.
			tags := slices.Clone(tc.tags)
			rand.New(rand.NewPCG(1, 2)).Shuffle(len(tags), func(i, j int) { tags[i], tags[j] = tags[j], tags[i] })
			d := p.Apply(tc.repo, tags, now)
			if d.Rule != tc.rule {
				t.Errorf("rule = %d, want %d", d.Rule, tc.rule)
			}
			var deleted []string
			for _, tag := range d.Delete {
				deleted = append(deleted, tag.Name)
			}
			want := slices.Clone(tc.deleted)
			slices.Sort(want)
			if !slices.Equal(deleted, want) {
				t.Errorf("deleted %v\nwant    %v", deleted, want)
			}
			if d.Guarded != tc.guarded {
				t.Errorf("guarded = %v, want %v", d.Guarded, tc.guarded)
			}
			if d.Rule < 0 {
				if len(d.Keep)+len(d.Delete) != 0 {
					t.Errorf("no rule applies, yet keep %v delete %v", d.Keep, d.Delete)
				}
				return
			}
			if len(d.Keep)+len(d.Delete) != len(tc.tags) {
				t.Errorf("%d kept + %d deleted != %d tags", len(d.Keep), len(d.Delete), len(tc.tags))
			}
			reasons := map[string]Reason{}
			for _, k := range d.Keep {
				reasons[k.Name] = k.Reason
			}
			for tag, want := range tc.reasons {
				if reasons[tag] != want {
					t.Errorf("%s kept for %q, want %q", tag, reasons[tag], want)
				}
			}
		})
	}
}

// TestApplyGenerated checks invariants on generated repositories: keep
// and delete partition the tags, the keepMostRecentlyPushed newest
// unselected-by-name tags are kept, nothing within the duration is
// deleted, and without deleteLastTag a repository with tags keeps one.
func TestApplyGenerated(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for i := range 300 {
		var tags []Tag
		for j := range r.IntN(40) {
			prefix := []string{"build-", "v1.", "nightly-", "latest", "pr-"}[r.IntN(5)]
			tags = append(tags, Tag{Name: fmt.Sprintf("%s%d", prefix, j), Pushed: now.Add(-time.Duration(r.IntN(2000)) * time.Hour)})
		}
		rule := Rule{Repositories: []string{"**"}, DeleteLastTag: r.IntN(4) == 0}
		if r.IntN(2) == 0 {
			rule.KeepTags = []string{`v1\..*`}
		}
		if r.IntN(2) == 0 {
			rule.PruneTags = []string{"build-.*", "nightly-.*"}
		}
		n := r.IntN(6)
		rule.KeepMostRecentlyPushed = &n
		within := time.Duration(r.IntN(500)) * time.Hour
		if within > 0 {
			rule.KeepPushedWithin = within.String()
		}
		c, err := Policy{Rules: []Rule{rule}}.Compile()
		if err != nil {
			// Only a rule that keeps nothing is refused.
			if len(rule.KeepTags)+len(rule.PruneTags) != 0 || n != 0 || within != 0 {
				t.Fatalf("case %d: %v", i, err)
			}
			continue
		}
		d := c.Apply("repo", tags, now)
		if len(d.Keep)+len(d.Delete) != len(tags) {
			t.Fatalf("case %d: not a partition", i)
		}
		for _, del := range d.Delete {
			if within > 0 && del.Pushed.After(now.Add(-within)) {
				t.Errorf("case %d: %s pushed within %s deleted", i, del.Name, within)
			}
			if matchAny(c.rules[0].keep, del.Name) {
				t.Errorf("case %d: %s matches keepTags, deleted", i, del.Name)
			}
			if len(rule.PruneTags) > 0 && !matchAny(c.rules[0].prune, del.Name) {
				t.Errorf("case %d: %s not selected by pruneTags, deleted", i, del.Name)
			}
		}
		recent := 0
		for _, k := range d.Keep {
			if k.Reason == KeptMostRecent {
				recent++
				for _, del := range d.Delete {
					if del.Pushed.After(k.Pushed) {
						t.Errorf("case %d: %s deleted, older %s kept as most recent", i, del.Name, k.Name)
					}
				}
			}
		}
		if recent > n {
			t.Errorf("case %d: %d kept as most recent, want at most %d", i, recent, n)
		}
		if len(tags) > 0 && len(d.Keep) == 0 && !rule.DeleteLastTag {
			t.Errorf("case %d: every tag deleted without deleteLastTag", i)
		}
	}
}

func TestCompileRefusesNamingTheKey(t *testing.T) {
	tests := map[string]struct {
		rules []Rule
		want  []string
	}{
		"no repositories": {
			rules: []Rule{{KeepMostRecentlyPushed: intp(1)}},
			want:  []string{"rules[0].repositories: required"},
		},
		"bad glob": {
			rules: []Rule{{Repositories: []string{"ok/**", "Team/[a-z]"}, KeepMostRecentlyPushed: intp(1)}},
			want:  []string{`rules[0].repositories[1]: "Team/[a-z]" is not a repository glob`},
		},
		"bad regular expressions": {
			rules: []Rule{{Repositories: []string{"**"}, KeepTags: []string{"ok", "(v1"}, PruneTags: []string{"*x"}}},
			want:  []string{"rules[0].keepTags[1]: error parsing regexp: missing closing )", "rules[0].pruneTags[0]: error parsing regexp: missing argument to repetition operator"},
		},
		"empty pattern": {
			rules: []Rule{{Repositories: []string{"**"}, KeepTags: []string{""}}},
			want:  []string{"rules[0].keepTags[0]: empty pattern"},
		},
		"negative count": {
			rules: []Rule{{Repositories: []string{"**"}, PruneTags: []string{"x"}, KeepMostRecentlyPushed: intp(-1)}},
			want:  []string{"rules[0].keepMostRecentlyPushed: -1 is negative"},
		},
		"bad durations": {
			rules: []Rule{
				{Repositories: []string{"a"}, KeepPushedWithin: "14d"},
				{Repositories: []string{"b"}, PruneTags: []string{"x"}, KeepPushedWithin: "-1h"},
			},
			want: []string{`rules[0].keepPushedWithin: want a Go duration such as "336h" (14 days), got "14d"`, "rules[1].keepPushedWithin: -1h is not positive"},
		},
		"a rule that would delete every tag": {
			rules: []Rule{{Repositories: []string{"a"}}, {Repositories: []string{"b"}, KeepMostRecentlyPushed: intp(0), DeleteLastTag: true}},
			want:  []string{"rules[0]: selects every tag and keeps none", "rules[1]: selects every tag and keeps none"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Policy{Rules: tc.rules}.Compile()
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestParse(t *testing.T) {
	c, err := Parse([]byte(`{"rules":[{"repositories":["ci/**"],"keepTags":["v.*"],"keepMostRecentlyPushed":2,"keepPushedWithin":"1h","deleteLastTag":true}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Rules() != 1 || c.Match("ci/app") != 0 || c.Match("cd/app") != -1 {
		t.Errorf("parsed policy matches wrongly")
	}
	if c, err := Parse([]byte(`{"rules":[]}`)); err != nil || c.Rules() != 0 {
		t.Errorf("empty policy: %v", err)
	}
	for doc, want := range map[string]string{
		`{"rules":[{"repositories":["a"],"keepTag":["x"]}]}`:                `unknown key "keepTag"`,
		`{"rules":[{"repositories":["a"],"keepMostRecentlyPushed":"ten"}]}`: "rules.keepMostRecentlyPushed: want a int, got a JSON string",
		`{"rules":[{"repositories":["a"],"keepTags":["("]}]}`:               "rules[0].keepTags[0]: error parsing regexp",
		`{"rules":`:       "not a JSON policy",
		`{"rules":[]} {}`: "more than one JSON value",
		`{"rules":[{"repositories":["a"],"keepPushedWithin":"2 weeks"}]}`:          "rules[0].keepPushedWithin: want a Go duration",
		`{"rules":[{"repositories":["a"],"pruneTags":["x"]},{"repositories":[]}]}`: "rules[1].repositories: required",
	} {
		if _, err := Parse([]byte(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%s) = %v, want %q", doc, err, want)
		}
	}
}

func TestCompileGlob(t *testing.T) {
	tests := []struct {
		glob    string
		match   []string
		noMatch []string
	}{
		{"**", []string{"a", "a/b", "a/b/c"}, nil},
		{"ci/*", []string{"ci/app", "ci/a.b-c_d"}, []string{"ci", "ci/app/x", "cd/app"}},
		{"ci/**", []string{"ci/app", "ci/app/x"}, []string{"ci", "cix/app"}},
		{"**/cache", []string{"cache", "a/cache", "a/b/cache"}, []string{"acache", "cache/x"}},
		{"team/**/tmp", []string{"team/tmp", "team/a/tmp", "team/a/b/tmp"}, []string{"team/atmp"}},
		{"app-?", []string{"app-1", "app-x"}, []string{"app-", "app-10", "app-/"}},
		{"a.b", []string{"a.b"}, []string{"axb"}},
		{"*-dev", []string{"web-dev"}, []string{"team/web-dev"}},
	}
	for _, tc := range tests {
		re, err := CompileGlob(tc.glob)
		if err != nil {
			t.Fatalf("%s: %v", tc.glob, err)
		}
		for _, s := range tc.match {
			if !re.MatchString(s) {
				t.Errorf("%s does not match %s", tc.glob, s)
			}
		}
		for _, s := range tc.noMatch {
			if re.MatchString(s) {
				t.Errorf("%s matches %s", tc.glob, s)
			}
		}
	}
	for _, bad := range []string{"", "App", "a[b]", "a b", "a\\b", "a{b,c}"} {
		if _, err := CompileGlob(bad); err == nil {
			t.Errorf("CompileGlob(%q) accepted", bad)
		}
	}
}
