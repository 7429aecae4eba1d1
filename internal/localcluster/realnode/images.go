package realnode

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// busyboxPath is Debian busybox-static's binary: one static executable, no libraries.
const busyboxPath = "/bin/busybox"

// busyboxApplets are linked in the image's /bin.
var busyboxApplets = []string{"sh", "echo", "cat", "sleep", "ls", "true", "false", "env", "md5sum", "head", "tail",
	"wc", "date", "id", "mount", "ps", "grep", "dd", "mkdir", "rm", "test", "["}

// Images in the registry.
const (
	busyboxRepo = "kubehtc/busybox:1"
	pauseRepo   = "kubehtc/pause:1"
)

// pushImages builds the busybox image and the sandbox image (the same layer; its command sleeps until
// SIGTERM, as the pause container does) and pushes both. It returns the sandbox image's reference.
func (s *Nodes) pushImages(ctx context.Context) (string, error) {
	layer, err := busyboxLayer()
	if err != nil {
		return "", err
	}
	push := func(repo string, cmd []string) (string, error) {
		img, err := mutate.AppendLayers(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON), layer)
		if err != nil {
			return "", err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return "", err
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", "amd64"
		cf.Config.Env = []string{"PATH=/bin"}
		cf.Config.Cmd = cmd
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			return "", err
		}
		ref := s.Registry + "/" + repo
		r, err := name.ParseReference(ref)
		if err != nil {
			return "", err
		}
		if err := remote.Write(r, img, remote.WithContext(ctx)); err != nil {
			return "", fmt.Errorf("pushing %s: %w", ref, err)
		}
		return ref, nil
	}
	if s.BusyboxImage, err = push(busyboxRepo, []string{"/bin/sh"}); err != nil {
		return "", err
	}
	return push(pauseRepo, []string{"/bin/sh", "-c", "trap 'exit 0' TERM INT; while true; do sleep 3600 & wait $!; done"})
}

// busyboxLayer is a layer with /bin/busybox, its applet links and the directories a container needs.
func busyboxLayer() (v1.Layer, error) {
	bb, err := os.ReadFile(busyboxPath)
	if err != nil {
		return nil, fmt.Errorf("reading %s (install busybox-static): %w", busyboxPath, err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	for _, d := range []string{"bin", "etc", "tmp", "proc", "sys", "dev", "var", "root"} {
		mode := int64(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: mode, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(bb)), ModTime: epoch}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bb); err != nil {
		return nil, err
	}
	for _, a := range busyboxApplets {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	for _, f := range [][2]string{{"etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"}, {"etc/group", "root:x:0:\n"}} {
		name, content := f[0], f[1]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(content)), ModTime: epoch}); err != nil {
			return nil, err
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}
