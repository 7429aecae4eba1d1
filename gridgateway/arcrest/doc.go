// Package arcrest serves the NorduGrid ARC CE REST interface (API 1.0 under /arex/rest/1.0) in front of the
// grid gateway, so that ARC clients (arcsub, arcstat, arcget, aCT, pyarcrest) submit to a Kubernetes site
// unchanged: GLUE2 information, jobs as GridJobs (ADL and xRSL descriptions through the part-1
// translation), X.509 delegations kept as Secrets, and a session directory per job in a session.Store
// (a directory, on a PersistentVolume in a real cluster) that survives gateway restarts.
//
// It is a front door: HTTP, ADL/xRSL, delegations and GLUE2 live here; what a request does to a job lives in
// the gateway core (gridgateway/jobs, gridgateway/session), shared with the gRPC API, and errors become
// HTTP codes in one place (statusOf). The API server stays the gateway's database for jobs and
// delegations; only file content (inputs, outputs) lives in the Store. See docs/gateway.md ("ARC REST") and ../shared/reference/arc-rest.md.
package arcrest
