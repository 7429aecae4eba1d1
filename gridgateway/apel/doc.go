// Package apel accounts the site's finished jobs for WLCG: every Pod of a queue that ran (the Pod of a
// GridJob, or a batch Pod in a queue's namespace) becomes one APEL individual job record, written into a
// directory queue that APEL's ssmsend sends, and into a ledger from which a monthly summary per VO and user
// is kept.
//
// Formats, from APEL's own sources (github.com/apel/apel; read, not copied):
//   - records: apel/db/records/job.py (JobRecord: field order, mandatory fields, ServiceLevelType one of
//     si2k, HEPSPEC, HEPscore23) under the header "APEL-individual-job-message: v0.3", records ended by "%%";
//   - summaries: apel/db/records/summary.py (SummaryRecord) under "APEL-summary-job-message: v0.3";
//   - the outgoing directory is a dirq QueueSimple (github.com/cern-mig/python-dirq, dirq/QueueSimple.py and
//     QueueBase.py): intermediate directories of 8 hex digits (the time, rounded down to 60 s), elements of 14
//     hex digits (seconds, microseconds, a digit of the pid), written as "<name>.tmp" and then made visible
//     atomically; ssmsend reads exactly that layout from its "path".
//
// Exactly once. The state lives in the API server: a Pod of a queue gets the finalizer
// apel.kubehtc.io/record once it is bound, so it cannot disappear unaccounted; when it ended, its record is
// staged in a file named by the Pod's UID (rewriting it is harmless), then one patch sets the annotation
// apel.kubehtc.io/accounted and drops the finalizer. Only records of annotated (or vanished) Pods leave the
// staging directory, in batches moved first into a batch directory named after the dirq element they
// become; a restart finishes a half-done batch and never re-stages an annotated Pod.
package apel
