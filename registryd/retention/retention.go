// Package retention is registryd's tag retention policy: which tags of a
// repository to keep, and therefore which to delete, before a garbage
// collection frees what the deleted tags held. `registryd garbage-collect
// --retention-policy FILE` reads one; the operator writes the same file from
// a GarbageCollection's spec.retention.
//
// # The policy file
//
//	{"rules": [
//	  {"repositories": ["ci/**"],
//	   "keepTags": ["v?[0-9]+\\.[0-9]+\\.[0-9]+"],
//	   "keepMostRecentlyPushed": 10},
//	  {"repositories": ["**"],
//	   "pruneTags": ["nightly-.*"],
//	   "keepPushedWithin": "336h"}
//	]}
//
// Rules are tried in order and the first whose repositories match a
// repository applies to it; a repository no rule matches keeps every tag.
// Within the repository a rule applies to, a tag is:
//
//  1. kept when pruneTags is set and the tag matches none of its patterns
//     (the rule selects only the tags pruneTags names; without pruneTags it
//     selects every tag);
//  2. kept when it matches a keepTags pattern;
//  3. kept when it is among the keepMostRecentlyPushed most recently pushed
//     of the tags still left after steps 1 and 2 (ties broken by name);
//  4. kept when it was pushed within keepPushedWithin of the run's start;
//  5. deleted otherwise.
//
// Then the last-tag guard: when every tag of the repository would be
// deleted, the most recently pushed one is kept instead, unless the rule
// says deleteLastTag: true. No tag name is special: `latest` is kept only
// when a rule keeps it (keepTags: ["latest"]).
//
// # Matching
//
// Repository patterns are globs over repository names: `*` matches any run
// of characters other than `/`, `?` one such character, `**` any run of
// characters including `/`, and a leading `**/` (or one after a `/`) also
// matches nothing, so `**/cache` matches `cache` and `a/b/cache`, and
// `team/**` matches every repository below team/. Only the characters of
// repository names ([a-z0-9._/-]) and `*` and `?` are allowed.
//
// Tag patterns are regular expressions (Go's RE2 syntax) matched against the
// whole tag: `v1` matches the tag v1 and not v10; write `v1.*` for both.
//
// # Pushed
//
// A tag's push time is the modification time of its current link
// (_manifests/tags/<tag>/current/link), which registryd and the
// Distribution registry rewrite on every push of the tag, moved or not: the
// last time a client pushed that tag. Clocks matter as for the grace
// period: the time comes from the storage and the run's start from the
// collector's clock. A tag pushed seconds before the run is as recent as
// tags get: it is first in keepMostRecentlyPushed and within any
// keepPushedWithin. Nothing else protects it: the garbage collector's grace
// period protects content (blobs, and manifests whose revision is young),
// not tags, so a tag a rule does not keep is deleted however young, while
// the manifest it pointed at stays until a run after the grace period.
//
// Pull times are not recorded by registryd, so there is no rule on them.
//
// # Validation
//
// Parse and Load refuse, naming the key: unknown keys, a rule without
// repositories, a glob outside the grammar above, a tag pattern that does
// not compile, a negative keepMostRecentlyPushed, a keepPushedWithin that
// is not a positive Go duration ("336h"), and a rule that selects every tag
// and keeps none (no pruneTags and no keepTags, keepMostRecentlyPushed or
// keepPushedWithin), which would delete every tag it applies to: say
// pruneTags: [".*"] (and deleteLastTag: true) to mean that.
package retention

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// Policy is the policy file: an ordered list of rules.
type Policy struct {
	Rules []Rule `json:"rules"`
}

// Rule says which tags to keep in the repositories it selects. The JSON
// names are those of the Registry's spec.garbageCollection.retention.
type Rule struct {
	// Repositories are globs; the rule applies to a repository one of them
	// matches, unless an earlier rule does.
	Repositories []string `json:"repositories"`
	// KeepTags are regular expressions: a tag one of them matches is kept.
	KeepTags []string `json:"keepTags,omitempty"`
	// PruneTags are regular expressions: when set, only tags one of them
	// matches may be deleted.
	PruneTags []string `json:"pruneTags,omitempty"`
	// KeepMostRecentlyPushed keeps that many of the most recently pushed
	// tags the other criteria leave.
	KeepMostRecentlyPushed *int `json:"keepMostRecentlyPushed,omitempty"`
	// KeepPushedWithin keeps tags pushed within this Go duration of the
	// run's start, e.g. "336h" for 14 days.
	KeepPushedWithin string `json:"keepPushedWithin,omitempty"`
	// DeleteLastTag lets the rule delete every tag of a repository.
	DeleteLastTag bool `json:"deleteLastTag,omitempty"`
}

// Compiled is a validated policy, ready to apply.
type Compiled struct {
	rules []*rule
}

type rule struct {
	repos         []*regexp.Regexp
	keep, prune   []*regexp.Regexp
	keepRecent    int
	keepWithin    time.Duration
	deleteLastTag bool
}

// Load reads and compiles the policy file at path.
func Load(path string) (*Compiled, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes and compiles a policy file. Errors name the key at fault,
// e.g. rules[1].keepTags[0].
func Parse(data []byte) (*Compiled, error) {
	var p Policy
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field != "":
			return nil, fmt.Errorf("%s: want a %s, got a JSON %s", typeErr.Field, typeErr.Type, typeErr.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return nil, fmt.Errorf("unknown key %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
		}
		return nil, fmt.Errorf("not a JSON policy: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("not a JSON policy: more than one JSON value")
	}
	return p.Compile()
}

// Compile validates p. Every problem is reported, each naming its key
// (rules[1].keepTags[0]).
func (p Policy) Compile() (*Compiled, error) { return p.CompileAt("rules") }

// CompileAt is Compile with errors naming the rules as elements of list
// (e.g. "spec.retention" for spec.retention[1].keepTags[0]).
func (p Policy) CompileAt(list string) (*Compiled, error) {
	c := &Compiled{}
	var errs []error
	for i, r := range p.Rules {
		cr, err := r.compile(fmt.Sprintf("%s[%d]", list, i))
		errs = append(errs, err)
		c.rules = append(c.rules, cr)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

func (r Rule) compile(at string) (*rule, error) {
	var errs []error
	cr := &rule{deleteLastTag: r.DeleteLastTag}
	if len(r.Repositories) == 0 {
		errs = append(errs, fmt.Errorf("%s.repositories: required: the globs of the repositories the rule applies to (\"**\" for all)", at))
	}
	for i, g := range r.Repositories {
		re, err := CompileGlob(g)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.repositories[%d]: %w", at, i, err))
		}
		cr.repos = append(cr.repos, re)
	}
	compileTags := func(key string, patterns []string) []*regexp.Regexp {
		var out []*regexp.Regexp
		for i, p := range patterns {
			re, err := CompileTagPattern(p)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.%s[%d]: %w", at, key, i, err))
			}
			out = append(out, re)
		}
		return out
	}
	cr.keep = compileTags("keepTags", r.KeepTags)
	cr.prune = compileTags("pruneTags", r.PruneTags)
	if n := r.KeepMostRecentlyPushed; n != nil {
		if *n < 0 {
			errs = append(errs, fmt.Errorf("%s.keepMostRecentlyPushed: %d is negative", at, *n))
		}
		cr.keepRecent = *n
	}
	if r.KeepPushedWithin != "" {
		d, err := time.ParseDuration(r.KeepPushedWithin)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s.keepPushedWithin: want a Go duration such as \"336h\" (14 days), got %q", at, r.KeepPushedWithin))
		case d <= 0:
			errs = append(errs, fmt.Errorf("%s.keepPushedWithin: %s is not positive", at, r.KeepPushedWithin))
		}
		cr.keepWithin = d
	}
	if len(r.PruneTags) == 0 && len(r.KeepTags) == 0 && cr.keepRecent <= 0 && cr.keepWithin <= 0 {
		errs = append(errs, fmt.Errorf("%s: selects every tag and keeps none, so it would delete every tag of its repositories: "+
			"set keepTags, keepMostRecentlyPushed or keepPushedWithin, or pruneTags to say which tags it may delete (pruneTags: [\".*\"] for all)", at))
	}
	return cr, errors.Join(errs...)
}

// globRegexp is the grammar of a repository glob.
var globRegexp = regexp.MustCompile(`^[a-z0-9._/*?-]+$`)

// CompileGlob compiles a repository glob (see the package documentation)
// into an anchored regular expression.
func CompileGlob(glob string) (*regexp.Regexp, error) {
	if !globRegexp.MatchString(glob) {
		return nil, fmt.Errorf("%q is not a repository glob: use lower-case letters, digits, '.', '_', '-', '/', and the wildcards '*', '?' and '**'", glob)
	}
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(glob); i++ {
		switch {
		case strings.HasPrefix(glob[i:], "**/") && (i == 0 || glob[i-1] == '/'):
			b.WriteString("(?:.*/)?")
			i += 2
		case strings.HasPrefix(glob[i:], "**"):
			b.WriteString(".*")
			i++
		case glob[i] == '*':
			b.WriteString("[^/]*")
		case glob[i] == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(glob[i : i+1]))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// CompileTagPattern compiles a tag pattern, anchored: it must match the
// whole tag.
func CompileTagPattern(pattern string) (*regexp.Regexp, error) {
	if pattern == "" {
		return nil, errors.New("empty pattern")
	}
	if _, err := regexp.Compile(pattern); err != nil {
		return nil, err
	}
	return regexp.Compile(`^(?:` + pattern + `)$`)
}

// Rules is the number of rules.
func (c *Compiled) Rules() int { return len(c.rules) }

// Match returns the index of the first rule whose repositories match
// repository name, or -1 when none does.
func (c *Compiled) Match(name string) int {
	for i, r := range c.rules {
		if matchAny(r.repos, name) {
			return i
		}
	}
	return -1
}

func matchAny(res []*regexp.Regexp, s string) bool {
	return slices.ContainsFunc(res, func(re *regexp.Regexp) bool { return re.MatchString(s) })
}

// Tag is one tag of a repository as retention sees it.
type Tag struct {
	Name   string
	Digest digest.Digest
	// Pushed is when the tag was last pushed.
	Pushed time.Time
}

// Reason says why a tag is kept.
type Reason string

// Why a tag is kept.
const (
	// KeptNotSelected: the rule has pruneTags and the tag matches none.
	KeptNotSelected Reason = "notSelected"
	// KeptByName: the tag matches a keepTags pattern.
	KeptByName Reason = "keepTags"
	// KeptMostRecent: among the keepMostRecentlyPushed most recent.
	KeptMostRecent Reason = "keepMostRecentlyPushed"
	// KeptPushedWithin: pushed within keepPushedWithin.
	KeptPushedWithin Reason = "keepPushedWithin"
	// KeptLastTag: the last-tag guard kept it.
	KeptLastTag Reason = "lastTagGuard"
)

// Kept is a tag kept, and why.
type Kept struct {
	Tag
	Reason Reason
}

// Decision is what the policy does to one repository.
type Decision struct {
	// Rule is the index of the rule that applies; -1 when none does (every
	// tag is kept and Keep is empty).
	Rule int
	// Keep and Delete partition the tags (when a rule applies), each sorted
	// by name.
	Keep   []Kept
	Delete []Tag
	// Guarded is set when the last-tag guard kept a tag.
	Guarded bool
}

// Apply decides which tags of repository name to delete, judging push
// times against now (the run's start).
func (c *Compiled) Apply(name string, tags []Tag, now time.Time) Decision {
	i := c.Match(name)
	if i < 0 {
		return Decision{Rule: -1}
	}
	r := c.rules[i]
	d := Decision{Rule: i}
	var rest []Tag
	for _, t := range tags {
		switch {
		case len(r.prune) > 0 && !matchAny(r.prune, t.Name):
			d.Keep = append(d.Keep, Kept{t, KeptNotSelected})
		case matchAny(r.keep, t.Name):
			d.Keep = append(d.Keep, Kept{t, KeptByName})
		default:
			rest = append(rest, t)
		}
	}
	slices.SortFunc(rest, newestFirst)
	for n, t := range rest {
		switch {
		case n < r.keepRecent:
			d.Keep = append(d.Keep, Kept{t, KeptMostRecent})
		case r.keepWithin > 0 && t.Pushed.After(now.Add(-r.keepWithin)):
			d.Keep = append(d.Keep, Kept{t, KeptPushedWithin})
		default:
			d.Delete = append(d.Delete, t)
		}
	}
	if len(d.Keep) == 0 && len(d.Delete) > 0 && !r.deleteLastTag {
		// d.Delete is newest first.
		d.Keep = append(d.Keep, Kept{d.Delete[0], KeptLastTag})
		d.Delete = d.Delete[1:]
		d.Guarded = true
	}
	slices.SortFunc(d.Keep, func(a, b Kept) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(d.Delete, func(a, b Tag) int { return strings.Compare(a.Name, b.Name) })
	return d
}

// newestFirst orders tags by push time, newest first, then by name.
func newestFirst(a, b Tag) int {
	if c := b.Pushed.Compare(a.Pushed); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}
