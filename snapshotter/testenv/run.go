package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/stargz-snapshotter/fs/source"
)

// PrefetchSize is the size of each layer's head the snapshotter fetches at mount (as ctr-remote's default):
// none beyond the prioritized files.
const PrefetchSize = 0

var runSeq atomic.Int64

func (e *Env) resolver() containerd.RemoteOpt {
	return containerd.WithResolver(docker.NewResolver(docker.ResolverOptions{
		Hosts: docker.ConfigureDefaultRegistries(docker.WithPlainHTTP(docker.MatchLocalhost)),
	}))
}

// PullLazy pulls ref through kubehtc-snapshotter the way `ctr-remote image rpull` does: each layer descriptor
// carries the stargz labels (reference, digest, URLs), so the snapshotter mounts layers from the registry
// instead of containerd downloading them.
func (e *Env) PullLazy(ctx context.Context, ref string) (containerd.Image, error) {
	img, err := e.Client.Pull(ctx, ref, e.resolver(), containerd.WithPullUnpack,
		containerd.WithPullSnapshotter(SnapshotterName),
		containerd.WithImageHandlerWrapper(source.AppendDefaultLabelsHandlerWrapper(ref, PrefetchSize)))
	if err != nil {
		return nil, fmt.Errorf("lazy pull of %s: %w", ref, err)
	}
	return img, nil
}

// PullFull pulls ref the usual way: download every layer, unpack into overlayfs.
func (e *Env) PullFull(ctx context.Context, ref string) (containerd.Image, error) {
	img, err := e.Client.Pull(ctx, ref, e.resolver(), containerd.WithPullUnpack,
		containerd.WithPullSnapshotter("overlayfs"))
	if err != nil {
		return nil, fmt.Errorf("pull of %s: %w", ref, err)
	}
	return img, nil
}

// Run runs args in a new container of img on the given snapshotter (runc), waits for it, deletes it and
// returns its standard output. A non-zero exit is an error carrying standard error.
func (e *Env) Run(ctx context.Context, img containerd.Image, snapshotterName string, args ...string) (string, error) {
	id := fmt.Sprintf("run-%d", runSeq.Add(1))
	c, err := e.Client.NewContainer(ctx, id,
		containerd.WithImage(img),
		containerd.WithSnapshotter(snapshotterName),
		containerd.WithNewSnapshot(id, img),
		containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs(args...)))
	if err != nil {
		return "", fmt.Errorf("creating container: %w", err)
	}
	defer func() { _ = c.Delete(context.WithoutCancel(ctx), containerd.WithSnapshotCleanup) }()
	var stdout, stderr bytes.Buffer
	task, err := c.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, &stdout, &stderr),
		cio.WithFIFODir(filepath.Join(e.containerdDir(), "fifo"))))
	if err != nil {
		return "", fmt.Errorf("creating task: %w", err)
	}
	defer func() { _, _ = task.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill) }()
	statusC, err := task.Wait(ctx)
	if err != nil {
		return "", fmt.Errorf("waiting for task: %w", err)
	}
	if err := task.Start(ctx); err != nil {
		return "", fmt.Errorf("starting task: %w", err)
	}
	var st containerd.ExitStatus
	select {
	case st = <-statusC:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	code, _, err := st.Result()
	if err != nil {
		return "", fmt.Errorf("task result: %w", err)
	}
	// The copy of the output ends when the task is deleted (the FIFOs close).
	if _, err := task.Delete(ctx); err != nil {
		return "", fmt.Errorf("deleting task: %w", err)
	}
	if code != 0 {
		return stdout.String(), fmt.Errorf("%s exited with %d: %s", strings.Join(args, " "), code,
			strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// DeleteImage removes an image and, synchronously, its content and snapshots.
func (e *Env) DeleteImage(ctx context.Context, ref string) error {
	return e.Client.ImageService().Delete(ctx, ref, images.SynchronousDelete())
}

func (e *Env) deleteContainers(ctx context.Context) error {
	cs, err := e.Client.Containers(ctx)
	if err != nil {
		return fmt.Errorf("listing containers: %w", err)
	}
	var errs []error
	for _, c := range cs {
		if t, err := c.Task(ctx, nil); err == nil {
			_, _ = t.Delete(ctx, containerd.WithProcessKill)
		}
		if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
