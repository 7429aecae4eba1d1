package arcrest

import (
	"context"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/gridgateway/session"
)

// The collector's steps, one at a time, as the server runs them (session.Collector).

func (s *Server) maybeCollect(ctx context.Context, gj *kubehtcv1alpha1.GridJob, logs session.PodLogFunc) {
	s.collector(logs).Collect(ctx, gj)
}

func (s *Server) expire(ctx context.Context) { s.collector(nil).Expire(ctx) }

func (s *Server) expireDelegations(ctx context.Context) { s.collector(nil).ExpireDelegations(ctx) }
