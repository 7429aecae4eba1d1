// Package controller is the quota controller: every accounting interval (the root Queue's
// spec.policy.accountingInterval) it accounts every running pod of the cluster, decays each queue's and each
// user's usage, divides the capacity left by pods outside any queue among the queues, ranks them, and writes
// the result into Queue status. Decayed usage lives only in Queue status (with the time it was computed), so
// a restarted or failed-over controller continues from it instead of starting from zero.
//
// The arithmetic is github.com/kubehtc/kubehtc/quota/fairshare; this package only gathers inputs, writes
// status and exports metrics.
package controller
