package convert

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// entry is one member of a synthetic layer.
type entry struct {
	name     string
	typeflag byte
	link     string
	data     []byte
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{byte(seed)}).Read(b)
	return b
}

func makeTar(t *testing.T, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typeflag, Linkname: e.link, Mode: 0o644, Size: int64(len(e.data))}
		if e.typeflag == tar.TypeDir {
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var syntheticLayer = []entry{
	{name: "etc/", typeflag: tar.TypeDir},
	{name: "etc/a.conf", typeflag: tar.TypeReg, data: []byte("a = 1\n")},
	{name: "etc/b.conf", typeflag: tar.TypeReg, data: []byte("b = 2\n")},
	{name: "usr/", typeflag: tar.TypeDir},
	{name: "usr/bin/", typeflag: tar.TypeDir},
	{name: "usr/bin/tool", typeflag: tar.TypeReg, data: randomBytes(300<<10, 1)},
	{name: "usr/bin/tool-link", typeflag: tar.TypeSymlink, link: "tool"},
	{name: "data/", typeflag: tar.TypeDir},
	// Larger than the chunk size used below: stored as several chunks, read back across them.
	{name: "data/big.bin", typeflag: tar.TypeReg, data: randomBytes(1<<20+123, 2)},
	{name: "data/empty", typeflag: tar.TypeReg},
}

// tarOrder lists the member names of an eStargz blob in stream order (the blob is a valid gzip'd tar).
func tarOrder(t *testing.T, blob []byte) []string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

func TestLayer(t *testing.T) {
	cases := []struct {
		name        string
		prioritized []string
		// wantFirst are the regular files, in order, before the prefetch landmark.
		wantFirst    []string
		wantLandmark string
		wantMissed   []string
	}{
		{
			name:         "prioritized files first, then the landmark",
			prioritized:  []string{"/usr/bin/tool", "etc/b.conf", "/not/there"},
			wantFirst:    []string{"usr/bin/tool", "etc/b.conf"},
			wantLandmark: estargz.PrefetchLandmark,
			wantMissed:   []string{"not/there"},
		},
		{
			name:         "no prioritized files: no prefetch",
			wantLandmark: estargz.NoPrefetchLandmark,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := makeTar(t, syntheticLayer)
			var missed []string
			blob, err := Layer(context.Background(), io.NewSectionReader(bytes.NewReader(raw), 0, int64(len(raw))),
				Options{PrioritizedFiles: tc.prioritized, CompressionLevel: 1, ChunkSize: 256 << 10}, &missed)
			if err != nil {
				t.Fatal(err)
			}
			esgz, err := io.ReadAll(blob)
			if err != nil {
				t.Fatal(err)
			}
			blob.Close()
			if diff := cmp.Diff(tc.wantMissed, missed); diff != "" {
				t.Errorf("missed prioritized files (-want,+got):\n%s", diff)
			}

			// Order in the stream: prioritized files, the landmark, the rest, the TOC last.
			order := tarOrder(t, esgz)
			landmark := slices.Index(order, tc.wantLandmark)
			if landmark < 0 {
				t.Fatalf("no %s in %v", tc.wantLandmark, order)
			}
			var first []string
			for _, n := range order[:landmark] {
				if !strings.HasSuffix(n, "/") {
					first = append(first, n)
				}
			}
			if diff := cmp.Diff(tc.wantFirst, first); diff != "" {
				t.Errorf("regular files before the landmark (-want,+got):\n%s", diff)
			}
			if last := order[len(order)-1]; last != estargz.TOCTarName {
				t.Errorf("last member = %q, want the TOC %q", last, estargz.TOCTarName)
			}

			// The TOC lists every member, and every file reads back through it as written.
			r, err := estargz.Open(io.NewSectionReader(bytes.NewReader(esgz), 0, int64(len(esgz))))
			if err != nil {
				t.Fatalf("opening the eStargz blob: %v", err)
			}
			if got, want := r.TOCDigest().String(), blob.TOCDigest().String(); got != want {
				t.Errorf("TOC digest in the blob = %s, Build reported %s", got, want)
			}
			for _, e := range syntheticLayer {
				te, ok := r.Lookup(strings.TrimSuffix(e.name, "/"))
				if !ok {
					t.Errorf("%s is not in the TOC", e.name)
					continue
				}
				switch e.typeflag {
				case tar.TypeSymlink:
					if te.Type != "symlink" || te.LinkName != e.link {
						t.Errorf("%s: TOC type %q link %q, want symlink to %q", e.name, te.Type, te.LinkName, e.link)
					}
				case tar.TypeDir:
					if te.Type != "dir" {
						t.Errorf("%s: TOC type %q, want dir", e.name, te.Type)
					}
				case tar.TypeReg:
					sr, err := r.OpenFile(e.name)
					if err != nil {
						t.Errorf("opening %s: %v", e.name, err)
						continue
					}
					got, err := io.ReadAll(sr)
					if err != nil {
						t.Errorf("reading %s: %v", e.name, err)
					}
					if !bytes.Equal(got, e.data) {
						t.Errorf("%s: read %d bytes that differ from the %d written", e.name, len(got), len(e.data))
					}
				}
			}
		})
	}
}

func TestImage(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	host := u.Host

	layer1 := syntheticLayer[:3]                                                            // etc/
	layer2 := append([]entry{{name: "etc/", typeflag: tar.TypeDir}}, syntheticLayer[3:]...) // usr/, data/
	var layers []v1.Layer
	for _, l := range [][]entry{layer1, layer2} {
		raw := makeTar(t, l)
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, layer)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	src := host + "/test/app:v1"
	if err := remote.Write(must(name.ParseReference(src)), img); err != nil {
		t.Fatal(err)
	}

	t.Run("prioritized file in no layer", func(t *testing.T) {
		_, err := Image(context.Background(), src, host+"/test/app:bad", Options{PrioritizedFiles: []string{"/etc/a.conf", "/nope"}})
		if err == nil || !strings.Contains(err.Error(), "/nope") || strings.Contains(err.Error(), "a.conf") {
			t.Fatalf("err = %v, want one naming /nope only", err)
		}
	})

	var progress bytes.Buffer
	dst := host + "/test/app:v1-esgz"
	digest, err := Image(context.Background(), src, dst, Options{PrioritizedFiles: []string{"/usr/bin/tool"},
		CompressionLevel: 1, Progress: &progress, ProgressInterval: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"layer 2/2: fetched", "layer 1/2 converted", "layer 2/2 converted", "pushing " + dst, "pushed " + dst + " (manifest " + digest.String() + ")"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress output lacks %q:\n%s", want, progress.String())
		}
	}
	conv, err := remote.Image(must(name.ParseReference(dst)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := conv.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	cf, err := conv.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	convLayers, err := conv.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range m.Layers {
		if l.Annotations[estargz.TOCJSONDigestAnnotation] == "" || l.Annotations[estargz.StoreUncompressedSizeAnnotation] == "" {
			t.Errorf("layer %d lacks the eStargz annotations: %v", i, l.Annotations)
		}
		// The config's diff IDs are the digests of the uncompressed eStargz layers.
		rc, err := convLayers[i].Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		h, _, err := v1.SHA256(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if cf.RootFS.DiffIDs[i] != h {
			t.Errorf("layer %d: config diff id %s, uncompressed digest %s", i, cf.RootFS.DiffIDs[i], h)
		}
	}
	// The converted image holds the same files with the same contents.
	if diff := cmp.Diff(flatten(t, img), flatten(t, conv)); diff != "" {
		t.Errorf("files of the converted image (-original,+converted):\n%s", diff)
	}
}

// flatten returns the image's merged filesystem as path -> content (or "-> target" for links), ignoring the
// eStargz metadata members.
func flatten(t *testing.T, img v1.Image) map[string]string {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		switch h.Name {
		case estargz.TOCTarName, estargz.PrefetchLandmark, estargz.NoPrefetchLandmark:
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeSymlink:
			files[h.Name] = "-> " + h.Linkname
		case tar.TypeDir:
			files[strings.TrimSuffix(h.Name, "/")+"/"] = "dir"
		default:
			files[h.Name] = fmt.Sprintf("%d bytes %x", len(data), sumOf(data))
		}
	}
}

func sumOf(b []byte) []byte {
	h, _, _ := v1.SHA256(bytes.NewReader(b))
	return []byte(h.Hex)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
