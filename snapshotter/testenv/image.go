package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"

	"github.com/kubehtc/kubehtc/snapshotter/convert"
)

// Paths in the test image.
const (
	// ConfigFile is the small file a job reads at start.
	ConfigFile = "/etc/kubehtc/site.conf"
	// BigFile is the large file of the first payload layer (when ImageSpec.BigFileBytes > 0).
	BigFile = "/data/big.bin"
	// Busybox is the image's only program; /bin/sh, /bin/cat and /bin/md5sum link to it.
	Busybox = "/bin/busybox"
)

// ImageSpec describes the synthetic test image: busybox, a small config file and random payload.
type ImageSpec struct {
	// Repository is the image's repository in the registry, e.g. "kubehtc/lazy".
	Repository string
	// PayloadBytes is the total size of random payload, spread over PayloadLayers layers.
	PayloadBytes int64
	// PayloadLayers is the number of payload layers.
	PayloadLayers int
	// FileBytes is the size of each payload file (the last one of a layer may be shorter).
	FileBytes int64
	// BigFileBytes, if positive, adds BigFile of this size to the first payload layer (part of PayloadBytes).
	BigFileBytes int64
	// Seed makes the payload reproducible.
	Seed uint64
	// CompressionLevel of both the plain and the eStargz layers (gzip; 0 = default).
	CompressionLevel int
}

// Image is a built and pushed test image.
type Image struct {
	// PlainRef and EStargzRef are references through the counting proxy.
	PlainRef, EStargzRef string
	// PlainBytes and EStargzBytes are the sums of the compressed layer sizes.
	PlainBytes, EStargzBytes int64
	// ConfigContent is the content of ConfigFile.
	ConfigContent string
	// BigFileMD5 is the hex MD5 of BigFile (empty when there is none).
	BigFileMD5 string
}

// BuildImage writes the image's layers, pushes the plain (gzip) version as :plain and its eStargz conversion
// (busybox and the config file prioritized) as :esgz.
func (e *Env) BuildImage(ctx context.Context, spec ImageSpec) (*Image, error) {
	dir, err := os.MkdirTemp(e.Dir, "image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	level := spec.CompressionLevel
	if level == 0 {
		level = gzip.DefaultCompression
	}
	out := &Image{ConfigContent: fmt.Sprintf("site = kubehtc-test\nseed = %d\n", spec.Seed)}
	busybox, err := readBusybox("/bin/busybox")
	if err != nil {
		return nil, err
	}
	var layers []v1.Layer
	add := func(write func(*tar.Writer) error) error {
		l, err := writeLayer(filepath.Join(dir, fmt.Sprintf("layer-%d.tar.gz", len(layers))), level, write)
		if err != nil {
			return err
		}
		layers = append(layers, l)
		return nil
	}
	start := time.Now()
	if err := add(func(tw *tar.Writer) error {
		if err := dirs(tw, "bin", "etc", "etc/kubehtc", "tmp", "proc", "sys", "dev"); err != nil {
			return err
		}
		if err := file(tw, Busybox, 0o755, int64(len(busybox)), bytes.NewReader(busybox)); err != nil {
			return err
		}
		for _, l := range []string{"sh", "cat", "md5sum", "true"} {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + l, Linkname: "busybox",
				Mode: 0o777, ModTime: epoch}); err != nil {
				return err
			}
		}
		return file(tw, ConfigFile, 0o644, int64(len(out.ConfigContent)), bytes.NewReader([]byte(out.ConfigContent)))
	}); err != nil {
		return nil, err
	}
	rng := rand.NewChaCha8(seed32(spec.Seed))
	per := spec.PayloadBytes / int64(max(spec.PayloadLayers, 1))
	for li := range spec.PayloadLayers {
		if err := add(func(tw *tar.Writer) error {
			if err := dirs(tw, "data", fmt.Sprintf("data/l%d", li)); err != nil {
				return err
			}
			left := per
			if li == 0 && spec.BigFileBytes > 0 {
				h := md5.New()
				if err := file(tw, BigFile, 0o644, spec.BigFileBytes, io.TeeReader(io.LimitReader(rng, spec.BigFileBytes), h)); err != nil {
					return err
				}
				out.BigFileMD5 = hex.EncodeToString(h.Sum(nil))
				left -= spec.BigFileBytes
			}
			for fi := 0; left > 0; fi++ {
				n := min(left, spec.FileBytes)
				if err := file(tw, fmt.Sprintf("/data/l%d/f%03d.bin", li, fi), 0o644, n, io.LimitReader(rng, n)); err != nil {
					return err
				}
				left -= n
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	e.opts.Logf("wrote %d layers in %.1fs", len(layers), time.Since(start).Seconds())

	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Env = []string{"PATH=/bin"}
	cf.Config.Cmd = []string{"/bin/cat", ConfigFile}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	plain := fmt.Sprintf("%s/%s:plain", e.RegistryHost, spec.Repository)
	ref, err := name.ParseReference(plain)
	if err != nil {
		return nil, err
	}
	start = time.Now()
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		return nil, fmt.Errorf("pushing %s: %w", plain, err)
	}
	e.opts.Logf("pushed %s in %.1fs", plain, time.Since(start).Seconds())
	if out.PlainBytes, err = layerBytes(img); err != nil {
		return nil, err
	}

	esgz := fmt.Sprintf("%s/%s:esgz", e.RegistryHost, spec.Repository)
	start = time.Now()
	if _, err := convert.Image(ctx, plain, esgz, convert.Options{
		PrioritizedFiles: []string{Busybox, ConfigFile},
		CompressionLevel: level,
		TempDir:          e.Dir,
		Progress:         logWriter(e.opts.Logf),
	}); err != nil {
		return nil, err
	}
	e.opts.Logf("converted to %s in %.1fs", esgz, time.Since(start).Seconds())
	esgzRef, err := name.ParseReference(esgz)
	if err != nil {
		return nil, err
	}
	conv, err := remote.Image(esgzRef, remote.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	if out.EStargzBytes, err = layerBytes(conv); err != nil {
		return nil, err
	}
	out.PlainRef = fmt.Sprintf("%s/%s:plain", e.ProxyHost, spec.Repository)
	out.EStargzRef = fmt.Sprintf("%s/%s:esgz", e.ProxyHost, spec.Repository)
	return out, nil
}

var epoch = time.Unix(1700000000, 0)

func dirs(tw *tar.Writer, names ...string) error {
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: n + "/", Mode: 0o755, ModTime: epoch}); err != nil {
			return err
		}
	}
	return nil
}

func file(tw *tar.Writer, p string, mode int64, size int64, r io.Reader) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p[1:], Mode: mode, Size: size, ModTime: epoch}); err != nil {
		return err
	}
	_, err := io.CopyN(tw, r, size)
	return err
}

// writeLayer writes a gzip-compressed layer tar to path and returns it as a layer.
func writeLayer(path string, level int, write func(*tar.Writer) error) (v1.Layer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zw, err := gzip.NewWriterLevel(f, level)
	if err != nil {
		return nil, err
	}
	diff := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(zw, diff))
	if err := write(tw); err != nil {
		return nil, fmt.Errorf("writing layer: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return convert.FileLayer(path, hashOf(diff), types.OCILayer)
}

func hashOf(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

func layerBytes(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, l := range m.Layers {
		n += l.Size
	}
	return n, nil
}

func readBusybox(p string) ([]byte, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading %s (install busybox-static: hack/ensure-lazypull-deps.sh): %w", p, err)
	}
	return b, nil
}

func seed32(s uint64) [32]byte {
	var k [32]byte
	for i := range 8 {
		k[i] = byte(s >> (8 * i))
	}
	return k
}

type logWriter func(string, ...any)

func (w logWriter) Write(p []byte) (int, error) {
	w("%s", string(p[:len(p)-min(1, len(p))]))
	return len(p), nil
}
