// Package jobs is where a pilot becomes a GridJob: the grid gateway's core, which creates, reads
// (owner-checked), lists, cancels and cleans GridJobs for both front doors, so that they share naming,
// idempotency and the checks by construction.
//
//	pilot factory ──gRPC────▶ grpcapi ─┐                      ┌─▶ GridJob ──controller──▶ Pod
//	                                   ├─▶ jobs.Service ──────┤   (API server: the only job store)
//	ARC client ──HTTPS/REST─▶ arcrest ─┘    (this package)    └─▶ session.Store: control files, inputs,
//	      auth: who is calling                                     outputs (session.Collector fills it)
//
// A job's name is a hash of its owner and a client key (Name), so a retried submission finds its GridJob
// instead of making a second one, whichever gateway replica receives it; ARC, which has no client key, gets a
// fresh random one per job. Errors are transport-neutral (ErrInvalid, ErrForbidden, ErrNotFound, ...):
// each front door maps them to its codes in one place (grpcapi.statusOf, arcrest.statusOf).
package jobs
