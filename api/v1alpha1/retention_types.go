package v1alpha1

// RetentionRule says which tags to keep in the repositories it selects.
// Rules are tried in order; the first whose repositories match a
// repository applies to it, and a repository no rule matches keeps every
// tag. In that repository a tag is kept when the rule has pruneTags and
// the tag matches none of them, when it matches keepTags, when it is
// among the keepMostRecentlyPushed most recently pushed of the others, or
// when it was pushed within keepPushedWithin; every other tag is deleted.
// When that would delete every tag of the repository the most recently
// pushed one is kept, unless deleteLastTag is true. No tag name is
// special: `latest` is kept only by a rule that keeps it. A tag's push
// time is when a client last pushed it (its current link's modification
// time in the storage). The rules are registryd's (registryd/retention);
// docs/garbage-collection.md has the details and examples.
//
// +kubebuilder:validation:XValidation:rule="has(self.pruneTags) || has(self.keepTags) || (has(self.keepMostRecentlyPushed) && self.keepMostRecentlyPushed > 0) || has(self.keepPushedWithin)",message="the rule selects every tag and keeps none, so it would delete every tag of its repositories: set keepTags, keepMostRecentlyPushed or keepPushedWithin, or pruneTags to say which tags it may delete (pruneTags: [\".*\"] for all)"
type RetentionRule struct {
	// repositories are globs of the repository names the rule applies to:
	// `*` matches within one path component, `**` across components (a
	// leading `**/` also matches none), `?` one character; "**" matches
	// every repository, "ci/**" every repository below ci/.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +required
	Repositories []RepositoryGlob `json:"repositories"`

	// keepTags are regular expressions (RE2) matched against the whole
	// tag: a tag one of them matches is kept.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	KeepTags []TagPattern `json:"keepTags,omitempty"`

	// pruneTags are regular expressions (RE2) matched against the whole
	// tag: when set, only the tags one of them matches may be deleted;
	// without it every tag may be.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	PruneTags []TagPattern `json:"pruneTags,omitempty"`

	// keepMostRecentlyPushed keeps that many of the most recently pushed
	// tags among those pruneTags selects and keepTags does not keep.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	KeepMostRecentlyPushed *int32 `json:"keepMostRecentlyPushed,omitempty"`

	// keepPushedWithin keeps the tags pushed within this duration of the
	// run's start, e.g. "336h" for 14 days.
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="keepPushedWithin must be positive"
	// +optional
	KeepPushedWithin *Duration `json:"keepPushedWithin,omitempty"`

	// deleteLastTag lets the rule delete every tag of a repository; by
	// default the most recently pushed tag of a repository whose every tag
	// the rule would delete is kept.
	// +optional
	DeleteLastTag bool `json:"deleteLastTag,omitempty"`
}

// RepositoryGlob is a glob of repository names (see RetentionRule).
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=256
// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9._/*?-]+$')",message="must be a repository glob: lower-case letters, digits, '.', '_', '-', '/', and the wildcards *, ** and ?"
type RepositoryGlob string

// TagPattern is a regular expression (RE2 syntax) matched against the
// whole tag.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=256
// +kubebuilder:validation:XValidation:rule="'x'.matches(self) || !'x'.matches(self)",message="must be a regular expression (RE2 syntax), matched against the whole tag"
type TagPattern string

// RetentionSummary is what a run's retention rules did (or, in a dry run,
// would do).
type RetentionSummary struct {
	// tagsDeleted counts the tags deleted.
	// +optional
	TagsDeleted int64 `json:"tagsDeleted"`
	// repositories counts the repositories a rule applied to.
	// +optional
	Repositories int64 `json:"repositories,omitempty"`
	// tagsKeptByLastTagGuard counts the tags kept because a rule would have
	// deleted every tag of their repository (one per such repository).
	// +optional
	TagsKeptByLastTagGuard int64 `json:"tagsKeptByLastTagGuard,omitempty"`
	// byRepository counts the tags deleted in the repositories with the
	// most, most first; repositoriesOmitted counts the others.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	ByRepository []RepositoryTagsDeleted `json:"byRepository,omitempty"`
	// repositoriesOmitted is how many repositories with deleted tags
	// byRepository leaves out.
	// +optional
	RepositoriesOmitted int64 `json:"repositoriesOmitted,omitempty"`
	// eventsDropped counts the delete events of deleted tags that did not
	// reach a notifications endpoint.
	// +optional
	EventsDropped int64 `json:"eventsDropped,omitempty"`
}

// RepositoryTagsDeleted counts the tags deleted in one repository.
type RepositoryTagsDeleted struct {
	// repository name.
	// +required
	Repository string `json:"repository"`
	// tagsDeleted in it.
	// +required
	TagsDeleted int64 `json:"tagsDeleted"`
}
