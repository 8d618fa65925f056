// Package version carries the build version of the manager and registryd,
// stamped by the Makefile with -ldflags "-X .../version.Version=...".
package version

// Version is the build's version; "dev" for an unstamped build.
var Version = "dev"
