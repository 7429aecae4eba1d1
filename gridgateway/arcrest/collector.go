package arcrest

import (
	"context"

	"github.com/kubehtc/kubehtc/gridgateway/session"
)

// collector is the session collector over the server's store and options.
func (s *Server) collector(logs session.PodLogFunc) *session.Collector {
	return &session.Collector{Client: s.opts.Client, Site: s.opts.Site, Store: s.opts.Store, Logs: logs,
		Simulation: s.opts.Simulation, SessionLifetime: s.opts.SessionLifetime, Now: s.opts.Now}
}

// RunCollector runs the output collector (session.Collector) on the server's store until ctx ends: ended
// jobs' outputs into their session directories, expired sessions and delegations cleaned.
func (s *Server) RunCollector(ctx context.Context, logs session.PodLogFunc) {
	s.collector(logs).Run(ctx)
}
