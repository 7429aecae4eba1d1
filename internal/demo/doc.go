// Package demo is `kubehtc demo`: a mixed site workload on the local cluster (web Deployments, streams of
// short batch Jobs from two experiments, GPU jobs and gangs, grid pilots, and three VOs' backlogs on a pool of
// their own whose delivered fair share is measured), a live progress line while it runs, and a summary table
// when everything has drained.
//
// Each part of the workload is a Workload in Workloads; later capabilities (gangs, fair share, grid pilots)
// add one there and the progress line and summary pick it up.
package demo
