package grpcapi

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/klog/v2"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	gatewayv1 "github.com/kubehtc/kubehtc/gridgateway/api/v1"
	"github.com/kubehtc/kubehtc/gridgateway/session"
)

// Output retrieval limits and markers.
const (
	// DefaultMaxOutputBytes is the largest file GetOutput sends when Server.MaxOutputBytes is 0.
	DefaultMaxOutputBytes = 1 << 30
	// OutputChunkBytes is the data size of one GetOutput message.
	OutputChunkBytes = 256 << 10
	// MaxOutputFiles bounds a ListOutputs answer.
	MaxOutputFiles = 10000
)

// cleanOutputPath checks a client's relative file path: no absolute path, no "." or ".." or empty
// segments, no backslash, NUL or control bytes.
func cleanOutputPath(p string) (string, error) {
	if p == "" || strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\") || len(p) > 4096 {
		return "", status.Errorf(codes.InvalidArgument, "output path %.80q: a relative path inside the session directory is required", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.ContainsFunc(seg, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return "", status.Errorf(codes.InvalidArgument, "output path %.80q: a relative path inside the session directory is required", p)
		}
	}
	return path.Clean(p), nil
}

func (s *Server) outputStore() (session.Outputs, error) {
	if s.Outputs == nil {
		return nil, status.Error(codes.FailedPrecondition, "this gateway has no session store configured (kubehtc-gateway -arc-session-dir): outputs cannot be retrieved")
	}
	return s.Outputs, nil
}

// outputError maps a store error to a status.
func outputError(jobID, p string, err error) error {
	switch {
	case errors.Is(err, session.ErrBadOutputPath):
		return status.Errorf(codes.InvalidArgument, "output path %.80q: %v", p, err)
	case errors.Is(err, session.ErrOutputIsDir):
		return status.Errorf(codes.InvalidArgument, "output path %.80q of job %s is a directory: download its files", p, jobID)
	case errors.Is(err, fs.ErrNotExist):
		return status.Errorf(codes.NotFound, "job %s has no output file %.80q", jobID, p)
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	default:
		return status.Errorf(codes.Internal, "session store: %v", err)
	}
}

// ListOutputs implements gatewayv1.GatewayServer.
func (s *Server) ListOutputs(ctx context.Context, req *gatewayv1.ListOutputsRequest) (*gatewayv1.ListOutputsResponse, error) {
	_, gj, err := s.job(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	store, err := s.outputStore()
	if err != nil {
		return nil, err
	}
	files, err := store.ListFiles(ctx, gj.Namespace, gj.Name, MaxOutputFiles)
	if err != nil {
		return nil, outputError(req.GetId(), "", err)
	}
	out := &gatewayv1.ListOutputsResponse{Complete: gj.Status.State.Terminal() && gj.Annotations[kubehtcv1alpha1.OutputsCollectedAnnotation] != ""}
	for _, f := range files {
		out.Files = append(out.Files, &gatewayv1.OutputFile{Path: f.Path, Size: f.Size, Modified: timestamppb.New(f.Modified),
			Declared: slices.Contains(gj.Spec.Description.Outputs, f.Path)})
	}
	return out, nil
}

// GetOutput implements gatewayv1.GatewayServer.
func (s *Server) GetOutput(req *gatewayv1.GetOutputRequest, stream grpc.ServerStreamingServer[gatewayv1.OutputChunk]) error {
	ctx := stream.Context()
	_, gj, err := s.job(ctx, req.GetId())
	if err != nil {
		return err
	}
	p, err := cleanOutputPath(req.GetPath())
	if err != nil {
		return err
	}
	store, err := s.outputStore()
	if err != nil {
		return err
	}
	f, size, err := store.OpenFile(ctx, gj.Namespace, gj.Name, p)
	if err != nil {
		return outputError(req.GetId(), p, err)
	}
	defer f.Close()
	limit := s.MaxOutputBytes
	if limit <= 0 {
		limit = DefaultMaxOutputBytes
	}
	if size > limit {
		return status.Errorf(codes.ResourceExhausted, "output %.80q of job %s is %d bytes, above this gateway's download limit of %d bytes", p, req.GetId(), size, limit)
	}
	// Send what the file holds up to the size seen at open (a file still growing is cut there).
	buf := make([]byte, min(int64(OutputChunkBytes), max(size, 1)))
	var off int64
	for off < size {
		n, err := io.ReadFull(f, buf[:min(int64(len(buf)), size-off)])
		if n > 0 {
			if serr := stream.Send(&gatewayv1.OutputChunk{Offset: off, Data: buf[:n], Size: size}); serr != nil {
				return serr
			}
			off += int64(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return status.Errorf(codes.Aborted, "output %.80q of job %s shrank while it was read (%d of %d bytes sent)", p, req.GetId(), off, size)
		}
		if err != nil {
			return outputError(req.GetId(), p, err)
		}
	}
	if size == 0 {
		if err := stream.Send(&gatewayv1.OutputChunk{Size: 0}); err != nil {
			return err
		}
	}
	klog.FromContext(ctx).V(2).Info("Output sent", "gridjob", klog.KObj(gj), "path", p, "bytes", size)
	return nil
}
