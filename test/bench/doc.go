// Package bench holds the benchmarks `make bench` runs: registryd against
// the CNCF Distribution registry on the same machine, reported as ratios.
package bench
