// Package gc is registryd's garbage collector: a mark and sweep over the
// Distribution-compatible layout of package storage, run by
//
//	registryd garbage-collect [--dry-run] [--delete-untagged] [--retention-policy FILE]
//	    [--grace-period D] [--deadline T] [--hold-file PATH --hold-id ID | --allow-writable]
//	    [--quiet] [--json] [--workers N] config.yml
//
// # Retention
//
// With a retention policy (Options.Retention, --retention-policy; the rules
// are package retention's), the tags its rules do not keep are deleted
// first, and the collection then frees what only they reached. While
// marking, each repository a rule applies to has its tags read with their
// push times and decided on; the mark then treats the tags to delete as
// gone:
//
//   - with DeleteUntagged, only the tags kept are roots, as always;
//   - without it every revision stays live except those only deleted tags
//     named (orphaned by retention) and the untagged referrers of
//     orphaned revisions (signatures, SBOMs): retention frees what it
//     untags even when untagged manifests are otherwise kept. A manifest
//     that was untagged before the run is kept, as without a policy.
//
// The grace period then applies as to any untagged revision: a tag is
// deleted whatever its age (the rules decide, see package retention), but
// a manifest whose revision link is younger than the grace period stays,
// with what it references, until a later run.
//
// # Mark
//
// Every repository is marked on its own, several at a time (Options.Workers,
// 8 by default), and each adds what it keeps to one global set of live
// digests. Inside a repository a manifest revision is live when:
//
//   - without DeleteUntagged: always — every revision is live, as in
//     Distribution;
//   - with DeleteUntagged: a tag's current link points at it, or it is a
//     child of a live index or Docker manifest list (nested indexes
//     included), or its subject is a live manifest of the same repository
//     (transitively: a signature of an SBOM of a tagged image lives).
//
// A live manifest marks its own blob (and its revision link's target), its
// config and layers, and every child digest. A child that is not a revision
// of the repository is still marked as a blob, but marks nothing further,
// as in Distribution. Tag history (tags/<tag>/index) keeps nothing alive.
// A live manifest whose content is missing from the blob store is reported
// and marks nothing; one whose content cannot be decoded, or any storage
// error while marking, stops the run before anything is deleted.
//
// # Grace period
//
// Read-only during the run is not enough on its own: a blob uploaded just
// before the registry turned read-only, whose manifest PUT was refused
// during the run (and will be retried after), is unreferenced while the
// collector runs; so is an index's child until the index arrives. So
// Options.GracePeriod (--grace-period, 1h by default on the command line,
// 0 in the library) protects recent content, judged by the modification
// time the storage driver reports (Stat's ModTime; the filesystem's mtime)
// against the clock of the run's start:
//
//   - a blob whose data file is younger than the grace period is kept;
//   - a blob with a _layers link younger than it, in any repository
//     (including one whose first manifest has not arrived), is kept: an
//     upload of content the store already holds, and a cross-repository
//     mount, write only that link;
//   - with DeleteUntagged, an untagged revision whose revision link is
//     younger than it is kept as if tagged: the children, referrers and
//     blobs it reaches stay, and so do the _layers links of every kept
//     blob. A young revision whose content cannot be decoded is kept with
//     its own content (a warning), without stopping the run.
//
// The summary counts what the grace period kept: manifestsKeptYoung and
// blobsKeptYoung are what a run without it would have deleted in addition,
// and gracePeriodSeconds. A dry run applies it exactly as a real run does.
// Clocks matter: the times come from the storage (the node's clock for a
// local filesystem) and the cutoff from the collector's clock.
//
// # Deadline
//
// Options.Deadline (--deadline) is the instant from which no deletion
// starts. A run that reaches it while marking deletes nothing; one that
// reaches it while sweeping stops there, in the same consistent state as
// any interrupted run. Either way the run fails with ErrDeadline ("deadline
// reached") and a Summary of what was done, and a later run finishes the
// job. A dry run stops at the deadline too, so it still reports what a
// real run would delete.
//
// # Sweep
//
// In this order, so that an interrupted run leaves a consistent store and a
// re-run finishes the job:
//
//  1. the tags retention deletes and the dead revisions, in units: a dead
//     revision with the deleted tags that name it (each tag's whole
//     directory, as a client's DELETE of a tag), then the tag index
//     entries of kept tags that name it, then its revision link; a deleted
//     tag whose revision stays is a unit of its own. Tags go first, so no
//     tag is left pointing at a missing revision, and a unit that started
//     runs to its end, deadline or not (its deletions are one deletion for
//     the deadline's margin), so a run stopped by its deadline never
//     leaves a revision its retention tags orphaned undeleted: without
//     DeleteUntagged a later run could no longer tell it from one pushed
//     untagged. A tag that cannot be deleted keeps its revision and stops
//     the run before any blob (what it reaches must stay);
//  2. every blob under blobs/ outside the live set, found in one driver Walk
//     of blobs/ (no per-blob round trip);
//  3. each repository's _layers links to a digest outside the live set.
//
// A deletion that fails is reported and the run goes on (except a tag's,
// above); the blob of a manifest whose revision could not be removed, and
// the _layers links of a blob that could not be removed, are kept, so
// nothing left behind points at missing content. The run then fails (non-zero exit) and a re-run
// finishes the job. Memory grows with the live digests, the repository
// names and what is to be deleted; no path list of the store is held.
//
// # Differences from Distribution's garbage-collect
//
// Against the same store and flags the two delete the same files (this is
// tested against Distribution v3.1.2), except:
//
//   - Referrers: with --delete-untagged Distribution deletes every untagged
//     manifest, including signatures, SBOMs and attestations whose subject
//     is a tagged image; registryd keeps every manifest whose subject is
//     live, with its blobs.
//   - Live digests are per repository: Distribution spares an untagged
//     revision of repository B when the same digest is live in repository
//     A, and decides which _layers links of a repository to drop with what
//     was marked in the repositories enumerated before it. registryd drops a
//     revision that is dead in its own repository (its blob stays while
//     another repository uses it) and drops a _layers link exactly when its
//     blob is not live anywhere.
//   - A repository that never had a tag: Distribution with
//     --delete-untagged keeps its revisions but deletes their blobs (leaving
//     broken manifests); registryd deletes both.
//   - A _layers link to a blob that is already missing is removed (when
//     not live); Distribution leaves it.
//   - The grace period (above) has no Distribution counterpart; with
//     --grace-period 0 the two delete the same files.
//   - A blob stored under sha256 and referenced by a sha512 (or sha384)
//     descriptor through a _layers link (Distribution's layout for such
//     pushes) is kept; Distribution deletes it.
//
// # Safety
//
// The collector assumes nothing writes to the storage while it runs: a
// manifest pushed after its repository was marked could lose its layers.
// The command therefore refuses to run without proof that every registry
// serving the storage refuses writes: storage.maintenance.readonly.enabled:
// true in the configuration, or an active read-only hold (--hold-file with
// the hold's --hold-id: the operator's way, see docs/registryd-live-state.md),
// or --allow-writable, which is safe only when no registry serves this
// storage at all. A hold expires by itself; the command stops deleting
// hold.ExpiryMargin (10s) before the hold's expiry, so an expired hold never
// overlaps a sweep.
//
// # Notifications
//
// Every tag retention deletes is reported to Options.Events as the delete
// event a client's DELETE /v2/<name>/manifests/<tag> produces: action
// delete, a target with the repository and the tag. No HTTP request caused
// it, so the request carries only an id, the method DELETE and the user
// agent EventUserAgent; the actor is empty. The command sends them to the
// notifications endpoints of its configuration (source: its host and the
// port of http.addr, a random instance id), waits up to 10 s for them to
// be delivered once the run is done, and counts what was not delivered
// (retention.eventsDropped). A dry run sends nothing. Manifests and blobs
// the collection deletes send no event, as in Distribution.
//
// # Output
//
// Progress is logged with slog to stderr (the configuration's log level and
// formatter; --quiet keeps only warnings and errors). The summary — counts
// of repositories, manifests marked and deleted, tag index entries, blobs
// marked and deleted, bytes freed, _layers links deleted, what the grace
// period kept, what retention did (rules, repositories a rule applied to,
// tags deleted in all and per repository, tags the last-tag guard kept),
// duration, errors —
// goes to stdout as text, or with --json as one JSON object (Summary) that
// also lists every deleted tag, manifest, blob and _layers link. With
// --dry-run nothing is deleted and the same counts and lists name exactly
// what a real run would delete. When /dev/termination-log is writable (a
// Kubernetes container) the summary is written there too, without the
// lists and within the 4096 bytes the kubelet keeps: the per-repository
// tag counts are cut to those that fit (most first; the rest counted in
// retention.repositoriesOmitted) and the error messages halved.
package gc
