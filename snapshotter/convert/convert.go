// Package convert converts container images to eStargz, the seekable layer format that lets
// kubehtc-snapshotter start a container before its image is downloaded. Files listed as prioritized (those a
// job reads at start-up) are written first in their layer and fetched in one request when the layer is mounted.
package convert

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Options of a conversion.
type Options struct {
	// PrioritizedFiles are paths in the image ("/usr/bin/python3") that containers read at start-up, in the
	// order they are read. Each is moved to the front of the layer that holds it.
	PrioritizedFiles []string
	// CompressionLevel is the gzip level (1 fastest … 9 smallest). Zero means gzip.DefaultCompression.
	CompressionLevel int
	// ChunkSize is the size of the independently compressed chunks of large files, the unit of a lazy fetch.
	// Zero means the estargz default (4 MiB).
	ChunkSize int
	// TempDir holds the uncompressed and converted layers while they are processed (as large as the biggest
	// layer, twice). Empty means os.TempDir().
	TempDir string
	// Progress receives one line per step (layer converted, push progress); nil discards them.
	Progress io.Writer
	// ProgressInterval is how often push progress is reported. Zero means every 5 s.
	ProgressInterval time.Duration
	// Insecure allows plain HTTP to the registries (loopback and private addresses use it anyway).
	Insecure bool
}

// Layer converts a layer tar (gzip-compressed or not) to an eStargz blob. Prioritized files found in the layer
// come first; those not found are appended to missed.
func Layer(ctx context.Context, tarBlob *io.SectionReader, opts Options, missed *[]string) (*estargz.Blob, error) {
	level := opts.CompressionLevel
	if level == 0 {
		level = gzip.DefaultCompression
	}
	bopts := []estargz.Option{estargz.WithContext(ctx), estargz.WithCompressionLevel(level)}
	if opts.ChunkSize > 0 {
		bopts = append(bopts, estargz.WithChunkSize(opts.ChunkSize))
	}
	if len(opts.PrioritizedFiles) > 0 {
		var names []string
		for _, f := range opts.PrioritizedFiles {
			names = append(names, strings.TrimPrefix(path.Clean("/"+f), "/"))
		}
		bopts = append(bopts, estargz.WithPrioritizedFiles(names), estargz.WithAllowPrioritizeNotFound(missed))
	}
	blob, err := estargz.Build(tarBlob, bopts...)
	if err != nil {
		return nil, fmt.Errorf("building estargz layer: %w", err)
	}
	return blob, nil
}

// Image converts the image src (for the platform chosen by remoteOpts, linux/amd64 by default) to eStargz and
// pushes it as dst. It returns the digest of the pushed manifest. Every prioritized file must be in some layer.
func Image(ctx context.Context, src, dst string, opts Options, remoteOpts ...remote.Option) (v1.Hash, error) {
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	var nopts []name.Option
	if opts.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	srcRef, err := name.ParseReference(src, nopts...)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("parsing source %q: %w", src, err)
	}
	dstRef, err := name.ParseReference(dst, nopts...)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("parsing destination %q: %w", dst, err)
	}
	ropts := append([]remote.Option{remote.WithContext(ctx)}, remoteOpts...)
	img, err := remote.Image(srcRef, ropts...)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("reading %s: %w", src, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("reading config of %s: %w", src, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("reading layers of %s: %w", src, err)
	}
	tmp, err := os.MkdirTemp(opts.TempDir, "kubehtc-convert-")
	if err != nil {
		return v1.Hash{}, fmt.Errorf("creating temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)

	out := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	var diffIDs []v1.Hash
	found := map[string]bool{}
	for i, l := range layers {
		start := time.Now()
		var missed []string
		add, err := convertLayer(ctx, l, tmp, i, len(layers), opts, progress, &missed)
		if err != nil {
			return v1.Hash{}, fmt.Errorf("layer %d of %s: %w", i+1, src, err)
		}
		for _, f := range opts.PrioritizedFiles {
			if !slices.Contains(missed, strings.TrimPrefix(path.Clean("/"+f), "/")) {
				found[f] = true
			}
		}
		out, err = mutate.Append(out, add)
		if err != nil {
			return v1.Hash{}, fmt.Errorf("adding layer %d: %w", i+1, err)
		}
		diffID, _ := add.Layer.DiffID()
		diffIDs = append(diffIDs, diffID)
		size, _ := add.Layer.Size()
		fmt.Fprintf(progress, "layer %d/%d converted in %.1fs: %s, %s eStargz\n", i+1, len(layers),
			time.Since(start).Seconds(), shortDigest(diffID), mib(size))
	}
	var notFound []string
	for _, f := range opts.PrioritizedFiles {
		if !found[f] {
			notFound = append(notFound, f)
		}
	}
	if len(notFound) > 0 {
		return v1.Hash{}, fmt.Errorf("prioritized files in no layer of %s: %s", src, strings.Join(notFound, ", "))
	}
	ncf := cf.DeepCopy()
	ncf.RootFS.DiffIDs = diffIDs
	out, err = mutate.ConfigFile(out, ncf)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("setting config: %w", err)
	}
	digest, err := out.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("computing manifest digest: %w", err)
	}
	if err := push(ctx, dstRef, out, opts, progress, ropts); err != nil {
		return v1.Hash{}, err
	}
	fmt.Fprintf(progress, "pushed %s (manifest %s)\n", dstRef.String(), digest)
	return digest, nil
}

// convertLayer stores the uncompressed layer in dir, converts it, and returns the eStargz layer with the
// annotations the snapshotter reads (TOC digest, uncompressed size).
func convertLayer(ctx context.Context, l v1.Layer, dir string, i, n int, opts Options, progress io.Writer, missed *[]string) (mutate.Addendum, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return mutate.Addendum{}, fmt.Errorf("fetching: %w", err)
	}
	tarPath := fmt.Sprintf("%s/layer-%d.tar", dir, i)
	err = writeFile(tarPath, &progressReader{r: rc, w: progress, interval: interval(opts),
		prefix: fmt.Sprintf("layer %d/%d: fetched", i+1, n), last: time.Now()})
	rc.Close()
	if err != nil {
		return mutate.Addendum{}, err
	}
	defer os.Remove(tarPath)
	f, err := os.Open(tarPath)
	if err != nil {
		return mutate.Addendum{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return mutate.Addendum{}, err
	}
	blob, err := Layer(ctx, io.NewSectionReader(f, 0, st.Size()), opts, missed)
	if err != nil {
		return mutate.Addendum{}, err
	}
	blobPath := fmt.Sprintf("%s/layer-%d.esgz", dir, i)
	err = writeFile(blobPath, blob)
	blob.Close()
	if err != nil {
		return mutate.Addendum{}, err
	}
	diffID, err := v1.NewHash(blob.DiffID().String())
	if err != nil {
		return mutate.Addendum{}, fmt.Errorf("parsing diff id: %w", err)
	}
	layer, err := FileLayer(blobPath, diffID, types.OCILayer)
	if err != nil {
		return mutate.Addendum{}, err
	}
	usize, err := blob.UncompressedSize()
	if err != nil {
		return mutate.Addendum{}, fmt.Errorf("reading uncompressed size: %w", err)
	}
	return mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		Annotations: map[string]string{
			estargz.TOCJSONDigestAnnotation:         blob.TOCDigest().String(),
			estargz.StoreUncompressedSizeAnnotation: strconv.FormatInt(usize, 10),
		},
	}, nil
}

// push writes img to ref, reporting progress every opts.ProgressInterval.
func push(ctx context.Context, ref name.Reference, img v1.Image, opts Options, progress io.Writer, ropts []remote.Option) error {
	interval := interval(opts)
	updates := make(chan v1.Update, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		last := time.Now()
		for u := range updates {
			if time.Since(last) >= interval && u.Total > 0 {
				fmt.Fprintf(progress, "pushing %s: %s of %s\n", ref.Name(), mib(u.Complete), mib(u.Total))
				last = time.Now()
			}
		}
	}()
	err := remote.Write(ref, img, append(ropts, remote.WithProgress(updates))...)
	<-done
	if err != nil {
		return fmt.Errorf("pushing %s: %w", ref.Name(), err)
	}
	return nil
}

// FileLayer returns the compressed layer stored at path, with the given uncompressed digest. Its digest and
// size are computed from the file.
func FileLayer(path string, diffID v1.Hash, mt types.MediaType) (v1.Layer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, fmt.Errorf("hashing %s: %w", path, err)
	}
	l := &fileLayer{path: path, diffID: diffID, size: n, mediaType: mt,
		digest: v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}}
	return partial.CompressedToLayer(l)
}

type fileLayer struct {
	path           string
	digest, diffID v1.Hash
	size           int64
	mediaType      types.MediaType
}

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }

func writeFile(p string, r io.Reader) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

// progressReader reports how much was read every interval.
type progressReader struct {
	r        io.Reader
	w        io.Writer
	interval time.Duration
	prefix   string
	n        int64
	last     time.Time
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if time.Since(p.last) >= p.interval {
		fmt.Fprintf(p.w, "%s %s (uncompressed)\n", p.prefix, mib(p.n))
		p.last = time.Now()
	}
	return n, err
}

func interval(opts Options) time.Duration {
	if opts.ProgressInterval > 0 {
		return opts.ProgressInterval
	}
	return 5 * time.Second
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func shortDigest(h v1.Hash) string {
	if len(h.Hex) > 12 {
		return h.Algorithm + ":" + h.Hex[:12]
	}
	return h.String()
}
