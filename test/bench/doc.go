// Package bench holds the benchmarks `make bench` runs: registryd against
// the CNCF Distribution registry on the same machine, reported as ratios
// (BenchmarkGarbageCollect), and registryd's push and pull throughput on
// every storage driver, the object stores against their emulators
// (BenchmarkPushPull).
package bench
