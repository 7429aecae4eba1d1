package grpcapi

import (
	"context"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	gatewayv1 "github.com/kubehtc/kubehtc/gridgateway/api/v1"
	"github.com/kubehtc/kubehtc/gridgateway/jobs"
)

// Watch implements gatewayv1.GatewayServer: the caller's jobs as they are, then every change. When the
// API server ends its watch, Watch lists again and resumes, so a client sees every job's latest state.
func (s *Server) Watch(req *gatewayv1.WatchRequest, stream gatewayv1.Gateway_WatchServer) error {
	ctx := stream.Context()
	id, err := identity(ctx)
	if err != nil {
		return err
	}
	for _, jid := range req.GetIds() {
		if _, _, err := s.job(ctx, jid); err != nil {
			return err
		}
	}
	want := func(gj *kubehtcv1alpha1.GridJob) bool {
		return gj.Spec.Owner == id.Owner && (len(req.GetIds()) == 0 || slices.Contains(req.GetIds(), jobs.ID(gj)))
	}
	opts := jobs.ListOptions(id)
	logger := klog.FromContext(ctx)
	for {
		var list kubehtcv1alpha1.GridJobList
		if err := s.Client.List(ctx, &list, opts...); err != nil {
			return statusOf(err)
		}
		for i := range list.Items {
			if want(&list.Items[i]) {
				if err := stream.Send(toProto(&list.Items[i])); err != nil {
					return err
				}
			}
		}
		w, err := s.Client.Watch(ctx, &kubehtcv1alpha1.GridJobList{}, append(opts, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})...)
		if err != nil {
			return statusOf(err)
		}
		if err := s.forward(ctx, w, want, stream); err != nil {
			return err
		}
		logger.V(2).Info("Watch ended by the API server: listing again")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// forward sends the watch's events until it ends (nil) or the client goes away.
func (s *Server) forward(ctx context.Context, w watch.Interface, want func(*kubehtcv1alpha1.GridJob) bool, stream gatewayv1.Gateway_WatchServer) error {
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil
			}
			gj, isJob := ev.Object.(*kubehtcv1alpha1.GridJob)
			if !isJob || ev.Type == watch.Error || ev.Type == watch.Bookmark {
				if ev.Type == watch.Error {
					return nil
				}
				continue
			}
			if !want(gj) {
				continue
			}
			j := toProto(gj)
			if ev.Type == watch.Deleted {
				j.State = string(kubehtcv1alpha1.StateWiped)
			}
			if err := stream.Send(j); err != nil {
				return err
			}
		}
	}
}
