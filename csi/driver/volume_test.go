package driver

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseAttributes(t *testing.T) {
	tests := []struct {
		name    string
		attrs   map[string]string
		want    Attributes
		wantErr string
	}{
		{name: "cvmfs", attrs: map[string]string{"type": "cvmfs", "repository": "atlas.cern.ch"}, want: Attributes{Type: "cvmfs", Name: "atlas.cern.ch"}},
		{name: "type inferred from repository (cvmfs-csi style)", attrs: map[string]string{"repository": "sft.cern.ch"}, want: Attributes{Type: "cvmfs", Name: "sft.cern.ch"}},
		{name: "eos inferred", attrs: map[string]string{"path": "/eos/atlas/x"}, want: Attributes{Type: "eos", Name: "/eos/atlas/x"}},
		{name: "client config", attrs: map[string]string{"repository": "a.b", "clientConfig": "alt"}, want: Attributes{Type: "cvmfs", Name: "a.b", ClientConfig: "alt"}},
		{name: "CO keys ignored", attrs: map[string]string{"repository": "a.b", "csi.storage.k8s.io/pod.name": "p"}, want: Attributes{Type: "cvmfs", Name: "a.b"}},
		{name: "empty", attrs: nil, wantErr: "no repository or path"},
		{name: "both", attrs: map[string]string{"repository": "a.b", "path": "/eos/a"}, wantErr: "both"},
		{name: "type mismatch", attrs: map[string]string{"type": "eos", "repository": "a.b"}, wantErr: "type eos needs path"},
		{name: "unknown type", attrs: map[string]string{"type": "nfs", "repository": "a.b"}, wantErr: `type "nfs"`},
		{name: "unknown key", attrs: map[string]string{"repository": "a.b", "mountOptions": "rw"}, wantErr: "unknown keys"},
		{name: "traversal", attrs: map[string]string{"repository": ".."}, wantErr: "empty label"},
		{name: "eos traversal", attrs: map[string]string{"path": "/eos/../../etc"}, wantErr: "not clean"},
		{name: "client config for eos", attrs: map[string]string{"path": "/eos/a", "clientConfig": "alt"}, wantErr: "clientConfig"},
		{name: "client config with slash", attrs: map[string]string{"repository": "a.b", "clientConfig": "../x"}, wantErr: "clientConfig"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAttributes(tc.attrs)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrBadAttributes) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want ErrBadAttributes containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want,+got):\n%s", diff)
			}
		})
	}
}

func TestAllowlist(t *testing.T) {
	cfg := Config{CVMFS: CVMFSConfig{Repositories: []string{"atlas.cern.ch", "*.example.org"}}, EOS: EOSConfig{Paths: []string{"/eos/atlas"}}}
	cfg.Default()
	for repo, want := range map[string]bool{
		"atlas.cern.ch": true, "sft.example.org": true, "a.b.example.org": true,
		"example.org": false, "evilexample.org": false, "cms.cern.ch": false, "atlas.cern.ch.evil": false,
	} {
		if got := cfg.AllowsRepository(repo); got != want {
			t.Errorf("AllowsRepository(%q) = %t, want %t", repo, got, want)
		}
	}
	for p, want := range map[string]bool{"/eos/atlas": true, "/eos/atlas/user/j": true, "/eos/atlasx": false, "/eos/cms": false} {
		if got := cfg.AllowsEOSPath(p); got != want {
			t.Errorf("AllowsEOSPath(%q) = %t, want %t", p, got, want)
		}
	}
	_, err := cfg.Resolve(Attributes{Type: "cvmfs", Name: "cms.cern.ch"})
	if !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "allowed: *.example.org, atlas.cern.ch") {
		t.Errorf("Resolve of an unknown repository: %v", err)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg, err := LoadConfig(write("cvmfs:\n  repositories: [atlas.cern.ch]\n  clientConfigs:\n    alt: {configFile: /etc/cvmfs/alt.conf}\neos:\n  paths: [/eos/atlas]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{DriverName: DefaultDriverName, KubeletDir: "/var/lib/kubelet",
		CVMFS: CVMFSConfig{HostRoot: "/cvmfs", Mounter: "bind", Repositories: []string{"atlas.cern.ch"}, ClientConfigs: map[string]ClientConfig{"alt": {ConfigFile: "/etc/cvmfs/alt.conf"}}},
		EOS:   EOSConfig{HostRoot: "/eos", Mounter: "bind", Paths: []string{"/eos/atlas"}}}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("(-want,+got):\n%s", diff)
	}
	for _, bad := range []struct{ yaml, want string }{
		{"cvmfs: {repositories: [../x]}", "cvmfs.repositories"},
		{"eos: {paths: [/etc]}", "eos.paths"},
		{"kubeletDir: relative", "kubeletDir"},
		{"cvmfs: {mounter: nfs}", "cvmfs.mounter"},
		{"eos: {mounter: sshfs}", "eos.mounter"},
		{"cvmfs: {repository: [a.b]}", "unknown field"},
	} {
		if _, err := LoadConfig(write(bad.yaml)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: error %v, want one containing %q", bad.yaml, err, bad.want)
		}
	}
}

func TestVolumeIDRoundTrip(t *testing.T) {
	for _, a := range []Attributes{{Type: "cvmfs", Name: "atlas.cern.ch"}, {Type: "eos", Name: "/eos/atlas/u"}, {Type: "cvmfs", Name: "a.b", ClientConfig: "alt"}} {
		id := VolumeID("pvc-1", a)
		got, err := ParseVolumeID(id)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if diff := cmp.Diff(a, got); diff != "" {
			t.Errorf("%s (-want,+got):\n%s", id, diff)
		}
		if VolumeID("pvc-2", a) == id {
			t.Errorf("two request names give the same ID %s", id)
		}
	}
	for _, bad := range []string{"", "vol-1", "cvmfs:atlas.cern.ch", "cvmfs:atlas.cern.ch:xyz", "cvmfs:../x:0123456789abcdef", "eos:/etc:0123456789abcdef"} {
		if _, err := ParseVolumeID(bad); err == nil {
			t.Errorf("ParseVolumeID(%q) accepted", bad)
		}
	}
}

// FuzzParseAttributes: whatever is accepted names a repository or an EOS path that cannot leave its root,
// and survives the volume ID round trip.
func FuzzParseAttributes(f *testing.F) {
	f.Add("cvmfs", "atlas.cern.ch", "", "")
	f.Add("", "", "/eos/atlas/../x", "")
	f.Add("eos", "", "/eos/a/b", "alt")
	f.Add("", "a.b", "", "x:y")
	f.Fuzz(func(t *testing.T, typ, repo, p, cc string) {
		attrs := map[string]string{}
		for k, v := range map[string]string{"type": typ, "repository": repo, "path": p, "clientConfig": cc} {
			if v != "" {
				attrs[k] = v
			}
		}
		a, err := ParseAttributes(attrs)
		if err != nil {
			if !errors.Is(err, ErrBadAttributes) {
				t.Fatalf("error %v does not wrap ErrBadAttributes", err)
			}
			return
		}
		root := "/host/" + a.Type
		joined := filepath.Join(root, strings.TrimPrefix(a.Name, "/eos"))
		if !strings.HasPrefix(joined, root+"/") {
			t.Fatalf("%+v escapes its root: %s", a, joined)
		}
		back, err := ParseVolumeID(VolumeID("n", a))
		if err != nil {
			t.Fatalf("round trip of %+v: %v", a, err)
		}
		if back != a {
			t.Fatalf("round trip: %+v != %+v", back, a)
		}
	})
}

// FuzzParseVolumeID: no input panics, and an accepted ID is stable under re-encoding.
func FuzzParseVolumeID(f *testing.F) {
	f.Add("cvmfs:atlas.cern.ch:0123456789abcdef")
	f.Add("eos:/eos/a:0123456789abcdef:x")
	f.Add("::::")
	f.Fuzz(func(t *testing.T, id string) {
		a, err := ParseVolumeID(id)
		if err != nil {
			return
		}
		if _, err := ParseAttributes(a.Map()); err != nil {
			t.Fatalf("%q parsed to attributes that do not parse: %v", id, err)
		}
	})
}
