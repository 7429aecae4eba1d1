package driver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"

	"github.com/kubehtc/kubehtc/csi/mounter"
)

// NodeGetCapabilities advertises no optional node RPCs: no staging (nothing to share between targets on a
// node that the host client does not already share), no volume stats (a read-only software repository has
// no usage worth reporting).
func (d *Driver) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	return &csi.NodeGetCapabilitiesResponse{}, nil
}

// NodeGetInfo returns the node ID.
func (d *Driver) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{NodeId: d.nodeID}, nil
}

// NodePublishVolume mounts the volume at the target. The volume comes from the volume context (inline
// volumes, PVs) or, without one, from a volume ID made by CreateVolume. Publishing the same volume at the
// same target again succeeds, also after a restart of the driver (the mount table says what is mounted);
// a target that shows something else is refused with AlreadyExists.
func (d *Driver) NodePublishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID is required")
	}
	if req.GetTargetPath() == "" {
		return nil, status.Error(codes.InvalidArgument, "target path is required")
	}
	if err := checkCapability(req.GetVolumeCapability()); err != nil {
		return nil, err
	}
	target, err := d.checkTarget(req.GetTargetPath())
	if err != nil {
		return nil, err
	}
	vol, err := d.volumeFor(req.GetVolumeId(), req.GetVolumeContext())
	if err != nil {
		return nil, err
	}
	readOnly := vol.Type == mounter.TypeCVMFS || req.GetReadonly() || isReaderMode(req.GetVolumeCapability())
	m := d.mounterFor(vol)

	d.mu.Lock()
	defer d.mu.Unlock()
	table, err := mounter.ReadTable(d.mountInfo)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "reading the mount table: %v", err)
	}
	if e, mounted := table.At(target); mounted {
		if m.Shows(table, e, vol) && e.ReadOnly() == readOnly {
			return &csi.NodePublishVolumeResponse{}, nil
		}
		return nil, status.Errorf(codes.AlreadyExists, "target %s already shows another volume (or the same one with read-only %t)", target, e.ReadOnly())
	}
	created := false
	if err := os.Mkdir(target, 0o750); err == nil {
		created = true
	} else if !errors.Is(err, os.ErrExist) {
		return nil, status.Errorf(codes.Internal, "creating target: %v", err)
	}
	if err := m.Mount(ctx, vol, target, readOnly); err != nil {
		if created {
			_ = os.Remove(target)
		}
		return nil, statusFor(err, codes.InvalidArgument)
	}
	klog.FromContext(ctx).V(1).Info("Published", "type", vol.Type, "name", vol.Name, "target", target, "readOnly", readOnly)
	return &csi.NodePublishVolumeResponse{}, nil
}

// NodeUnpublishVolume unmounts the target and removes it; a target that is already gone is success.
func (d *Driver) NodeUnpublishVolume(ctx context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID is required")
	}
	if req.GetTargetPath() == "" {
		return nil, status.Error(codes.InvalidArgument, "target path is required")
	}
	target, err := d.checkTarget(req.GetTargetPath())
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := mounter.Unmount(d.mountInfo, target); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	klog.FromContext(ctx).V(1).Info("Unpublished", "target", target)
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

// checkTarget refuses targets outside the kubelet directory, so that a volume cannot be mounted over a
// node directory or another pod's files.
func (d *Driver) checkTarget(target string) (string, error) {
	if !filepath.IsAbs(target) || filepath.Clean(target) != strings.TrimSuffix(target, "/") {
		return "", status.Errorf(codes.InvalidArgument, "target path %q: want a clean absolute path", target)
	}
	target = filepath.Clean(target)
	parent, err := filepath.EvalSymlinks(filepath.Dir(target))
	if err != nil {
		return "", status.Errorf(codes.InvalidArgument, "target path %q: parent directory: %v", target, err)
	}
	root, err := filepath.EvalSymlinks(d.cfg.KubeletDir)
	if err != nil {
		root = d.cfg.KubeletDir
	}
	if !strings.HasPrefix(parent+"/", root+"/") {
		return "", status.Errorf(codes.InvalidArgument, "target path %q is not below the kubelet directory %s", target, d.cfg.KubeletDir)
	}
	return filepath.Join(parent, filepath.Base(target)), nil
}

func (d *Driver) volumeFor(id string, volumeContext map[string]string) (mounter.Volume, error) {
	notAllowed := codes.InvalidArgument
	var a Attributes
	var err error
	if hasVolumeAttributes(volumeContext) {
		a, err = ParseAttributes(volumeContext)
	} else {
		// No attributes: the ID must be one of ours; one that is not does not exist (NotFound).
		notAllowed = codes.NotFound
		if a, err = ParseVolumeID(id); err != nil {
			return mounter.Volume{}, status.Errorf(codes.NotFound, "volume %q: no volume attributes and %v", id, err)
		}
	}
	if err != nil {
		return mounter.Volume{}, statusFor(err, codes.InvalidArgument)
	}
	v, err := d.cfg.Resolve(a)
	if err != nil {
		return mounter.Volume{}, statusFor(err, notAllowed)
	}
	return v, nil
}

func hasVolumeAttributes(ctx map[string]string) bool {
	for k := range ctx {
		if !strings.HasPrefix(k, reservedPrefix) {
			return true
		}
	}
	return false
}

func (d *Driver) mounterFor(v mounter.Volume) mounter.Mounter {
	if v.Type == mounter.TypeCVMFS {
		return d.cvmfs
	}
	return d.eos
}

func isReaderMode(c *csi.VolumeCapability) bool {
	switch c.GetAccessMode().GetMode() {
	case csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY, csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY:
		return true
	}
	return false
}

// Mounted lists the CVMFS repositories and EOS paths mounted below the kubelet directory, read from the
// mount table (node telemetry).
func (d *Driver) Mounted() (cvmfs, eos []string, err error) {
	table, err := mounter.ReadTable(d.mountInfo)
	if err != nil {
		return nil, nil, err
	}
	cvmfs, eos, err = Identify(table, d.cfg, d.cvmfs)
	if err != nil {
		return nil, nil, err
	}
	// eosxd mounts (the helper mounter) name their instance in the table.
	if h, ok := d.eos.(mounter.EOSHelper); ok {
		seen := map[string]bool{}
		for _, p := range eos {
			seen[p] = true
		}
		for _, e := range table.Under(d.cfg.KubeletDir) {
			if p, ok := h.Identify(e); ok && !seen[p] && d.cfg.AllowsEOSPath(p) {
				seen[p] = true
				eos = append(eos, p)
			}
		}
		sort.Strings(eos)
	}
	return cvmfs, eos, nil
}
