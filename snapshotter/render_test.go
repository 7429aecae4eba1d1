package snapshotter

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pelletier/go-toml/v2"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/")

// TestRender renders every testdata/<case>/site.yaml and compares with the golden files beside it:
// containerd-1.toml (containerd 1.6/1.7), containerd-2.toml (2.x) and snapshotter.toml.
func TestRender(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*/site.yaml")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases in testdata: %v", err)
	}
	for _, sitePath := range dirs {
		dir := filepath.Dir(sitePath)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			data, err := os.ReadFile(sitePath)
			if err != nil {
				t.Fatal(err)
			}
			site, err := ParseSite(data)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for file, v := range map[string]ContainerdVersion{"containerd-1.toml": Containerd1, "containerd-2.toml": Containerd2} {
				out, err := RenderContainerd(site, v)
				if err != nil {
					t.Fatal(err)
				}
				got[file] = out
			}
			if got["snapshotter.toml"], err = RenderSnapshotterConfig(&site.Snapshotter); err != nil {
				t.Fatal(err)
			}
			for file, out := range got {
				golden := filepath.Join(dir, file)
				if *update {
					if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test ./snapshotter -run TestRender -update)", err)
				}
				if diff := cmp.Diff(string(want), out); diff != "" {
					t.Errorf("%s (-want,+got):\n%s", golden, diff)
				}
				var anything map[string]any
				if err := toml.Unmarshal([]byte(out), &anything); err != nil {
					t.Errorf("%s is not valid TOML: %v", golden, err)
				}
			}
			// The snapshotter reads back exactly the configuration the site describes.
			back, err := ParseConfig([]byte(got["snapshotter.toml"]))
			if err != nil {
				t.Fatalf("parsing the rendered snapshotter.toml: %v", err)
			}
			if diff := cmp.Diff(&site.Snapshotter, back); diff != "" {
				t.Errorf("snapshotter.toml round trip (-site,+parsed):\n%s", diff)
			}
		})
	}
}

// TestRenderContainerdSections checks, on parsed TOML rather than text, the settings containerd acts on.
func TestRenderContainerdSections(t *testing.T) {
	site := &Site{Snapshotter: Config{Address: "/run/s.sock", Root: "/var/lib/s"}}
	site.SetDefaults()
	cases := []struct {
		name       string
		version    ContainerdVersion
		disableCRI bool
		wantCRI    []string // path of the CRI table holding snapshotter; nil: no CRI table
		wantConfig int64
	}{
		{name: "containerd 1.x", version: Containerd1, wantCRI: []string{"plugins", "io.containerd.grpc.v1.cri", "containerd"}, wantConfig: 2},
		{name: "containerd 2.x", version: Containerd2, wantCRI: []string{"plugins", "io.containerd.cri.v1.images"}, wantConfig: 3},
		{name: "containerd 1.x standalone", version: Containerd1, disableCRI: true, wantConfig: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := *site
			s.DisableCRI = tc.disableCRI
			out, err := RenderContainerd(&s, tc.version)
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := toml.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatalf("invalid TOML: %v\n%s", err, out)
			}
			if doc["version"] != tc.wantConfig {
				t.Errorf("version = %v, want %d", doc["version"], tc.wantConfig)
			}
			proxy := lookup(doc, "proxy_plugins", "stargz")
			want := map[string]any{"type": "snapshot", "address": "/run/s.sock", "exports": map[string]any{
				"root": "/var/lib/s/", "enable_remote_snapshot_annotations": "true"}}
			if diff := cmp.Diff(want, proxy); diff != "" {
				t.Errorf("proxy plugin (-want,+got):\n%s", diff)
			}
			plugins, _ := doc["plugins"].(map[string]any)
			if tc.wantCRI == nil {
				if len(plugins) != 0 {
					t.Errorf("standalone fragment configures plugins: %v", plugins)
				}
				return
			}
			cri := lookup(doc, tc.wantCRI...)
			wantCRI := map[string]any{"snapshotter": "stargz", "disable_snapshot_annotations": false}
			if diff := cmp.Diff(wantCRI, cri); diff != "" {
				t.Errorf("CRI settings (-want,+got):\n%s", diff)
			}
		})
	}
}

func lookup(doc map[string]any, path ...string) any {
	var cur any = doc
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func TestParseContainerdVersion(t *testing.T) {
	cases := []struct {
		in      string
		want    ContainerdVersion
		wantErr bool
	}{
		{in: "1.6", want: Containerd1},
		{in: "1.6.20", want: Containerd1},
		{in: "v1.7.27", want: Containerd1},
		{in: "2", want: Containerd2},
		{in: "2.1.4", want: Containerd2},
		{in: "1.5", wantErr: true},
		{in: "3.0", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseContainerdVersion(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func FuzzParseSite(f *testing.F) {
	for _, p := range []string{"testdata/defaults/site.yaml", "testdata/site/site.yaml", "testdata/standalone/site.yaml"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("pluginName: 'a b'\nsnapshotter: {}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		site, err := ParseSite(data)
		if err != nil {
			return
		}
		for _, v := range []ContainerdVersion{Containerd1, Containerd2} {
			out, err := RenderContainerd(site, v)
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := toml.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatalf("rendered containerd %v fragment is not TOML: %v\n%s", v, err, out)
			}
		}
		out, err := RenderSnapshotterConfig(&site.Snapshotter)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseConfig([]byte(out))
		if err != nil {
			t.Fatalf("rendered snapshotter config does not parse: %v\n%s", err, out)
		}
		if diff := cmp.Diff(&site.Snapshotter, back); diff != "" {
			t.Fatalf("round trip (-site,+parsed):\n%s", diff)
		}
	})
}
