package driver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"

	"github.com/kubehtc/kubehtc/csi/mounter"
)

// Version is reported by GetPluginInfo.
var Version = "v0.1.0"

// Driver serves the CSI Identity, Controller and Node services.
type Driver struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedControllerServer
	csi.UnimplementedNodeServer

	cfg       Config
	nodeID    string
	cvmfs     mounter.Mounter
	eos       mounter.Mounter
	mountInfo string

	// mu serialises publish and unpublish: they read the mount table, then change it.
	mu sync.Mutex

	server *grpc.Server
}

// Options are the parts of a Driver that are not site configuration.
type Options struct {
	// NodeID is reported by NodeGetInfo (the Kubernetes node name).
	NodeID string
	// CVMFSMounter overrides the mounter that Config.CVMFS.Mounter selects (tests).
	CVMFSMounter mounter.Mounter
	// MountInfo is the mount table file; empty means /proc/self/mountinfo.
	MountInfo string
}

// New returns a driver for a defaulted, valid configuration.
func New(cfg Config, opts Options) (*Driver, error) {
	cfg.Default()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.NodeID == "" {
		return nil, errors.New("node ID is required")
	}
	d := &Driver{cfg: cfg, nodeID: opts.NodeID, cvmfs: opts.CVMFSMounter, eos: mounter.Bind{}, mountInfo: opts.MountInfo}
	if d.mountInfo == "" {
		d.mountInfo = mounter.ProcMountInfo
	}
	if d.cvmfs == nil {
		d.cvmfs = mounter.Bind{}
		if cfg.CVMFS.Mounter == MounterHelper {
			d.cvmfs = mounter.Helper{}
		}
	}
	if cfg.EOS.Mounter == MounterHelper {
		d.eos = mounter.EOSHelper{}
	}
	return d, nil
}

// Config returns the driver's configuration.
func (d *Driver) Config() Config { return d.cfg }

// Listen opens the CSI endpoint, "unix:///path/csi.sock" or a plain path, removing a stale socket left by
// a previous instance.
func Listen(endpoint string) (net.Listener, error) {
	p := strings.TrimPrefix(endpoint, "unix://")
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("endpoint %q: want unix:///absolute/path", endpoint)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing stale socket: %w", err)
	}
	return net.Listen("unix", p)
}

// Serve serves the CSI services on l until Stop is called.
func (d *Driver) Serve(l net.Listener) error {
	d.server = grpc.NewServer(grpc.UnaryInterceptor(logCalls))
	csi.RegisterIdentityServer(d.server, d)
	csi.RegisterControllerServer(d.server, d)
	csi.RegisterNodeServer(d.server, d)
	klog.InfoS("Serving CSI", "driver", d.cfg.DriverName, "endpoint", l.Addr().String(), "node", d.nodeID)
	return d.server.Serve(l)
}

// Stop stops serving; mounts stay (see the package doc).
func (d *Driver) Stop() {
	if d.server != nil {
		d.server.GracefulStop()
	}
}

func logCalls(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err != nil {
		klog.FromContext(ctx).V(1).Info("CSI call failed", "method", info.FullMethod, "err", err)
	} else {
		klog.FromContext(ctx).V(2).Info("CSI call", "method", info.FullMethod)
	}
	return resp, err
}

// GetPluginInfo returns the driver name and version.
func (d *Driver) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return &csi.GetPluginInfoResponse{Name: d.cfg.DriverName, VendorVersion: Version}, nil
}

// GetPluginCapabilities advertises the Controller service, and nothing the driver does not implement.
func (d *Driver) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	return &csi.GetPluginCapabilitiesResponse{Capabilities: []*csi.PluginCapability{{
		Type: &csi.PluginCapability_Service_{Service: &csi.PluginCapability_Service{Type: csi.PluginCapability_Service_CONTROLLER_SERVICE}},
	}}}, nil
}

// Probe reports ready once the mount table can be read.
func (d *Driver) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	if _, err := mounter.ReadTable(d.mountInfo); err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "reading the mount table: %v", err)
	}
	return &csi.ProbeResponse{}, nil
}

// statusFor maps attribute and mounter errors to CSI codes: malformed → InvalidArgument, not in the
// allowlist → notAllowed (InvalidArgument for attributes the CO passed, NotFound for a volume ID the
// driver cannot have created), unavailable on the node → FailedPrecondition.
func statusFor(err error, notAllowed codes.Code) error {
	switch {
	case errors.Is(err, ErrBadAttributes):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrNotAllowed):
		return status.Error(notAllowed, err.Error())
	case errors.Is(err, mounter.ErrUnavailable), errors.Is(err, mounter.ErrUnsupported):
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}
