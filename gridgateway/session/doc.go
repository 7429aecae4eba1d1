// Package session keeps the files of grid jobs beside their GridJobs: a Store of session directories
// (inputs the client uploads, outputs the job leaves) and control files (the description, the job's log),
// the read-only view of outputs that the gRPC API serves (Outputs), and the Collector that fills a job's
// session directory when it ends and removes what has expired.
//
// Both front doors use it: ARC REST reads and writes sessions (arcrest), the gRPC API lists and downloads
// outputs (grpcapi). A gateway with a session store runs one Collector, whichever doors it serves. In a
// real cluster the FileStore's directory is a ReadWriteMany volume that job Pods mount
// (translate.PodOptions.SessionClaimName).
package session
