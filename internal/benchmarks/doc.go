// Package benchmarks holds end-to-end benchmarks run on the local cluster. Each prints one line
// `BENCH <name> key=value ...` that `make bench-<name>` shows last.
//
// Benchmarks start a local cluster themselves (once per test binary), so `go test` without -bench starts
// nothing here.
package benchmarks
