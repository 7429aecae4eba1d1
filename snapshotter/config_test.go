package snapshotter

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseConfig(t *testing.T) {
	on, off := true, false
	cases := []struct {
		name    string
		in      string
		want    *Config
		wantErr string // substring of the error; empty: no error
	}{
		{
			name: "empty file gives the defaults",
			in:   "",
			want: &Config{Address: DefaultAddress, Root: DefaultRoot, BackgroundFetch: &on,
				Prefetch:              PrefetchConfig{TimeoutSeconds: 10},
				Cache:                 CacheConfig{MemoryEntries: 10, OpenFiles: 10, ChunkSizeBytes: 50000},
				RequestTimeoutSeconds: 30},
		},
		{
			name: "loopback registry over plain HTTP, background fetch off",
			in: `root = "/srv/lazy"
background_fetch = false
[[registry]]
host = "127.0.0.1:5000"
insecure = true
`,
			want: &Config{Address: DefaultAddress, Root: "/srv/lazy", BackgroundFetch: &off,
				Prefetch:              PrefetchConfig{TimeoutSeconds: 10},
				Cache:                 CacheConfig{MemoryEntries: 10, OpenFiles: 10, ChunkSizeBytes: 50000},
				RequestTimeoutSeconds: 30,
				Registries:            []RegistryConfig{{Host: "127.0.0.1:5000", Insecure: true}}},
		},
		{name: "unknown key", in: "no_background_fetch = true\n", wantErr: "no_background_fetch"},
		{name: "relative root", in: `root = "lazy"`, wantErr: `root "lazy": must be an absolute path`},
		{name: "relative socket", in: `address = "s.sock"`, wantErr: "address"},
		{name: "scheme in host", in: "[[registry]]\nhost = \"http://r:5000\"\n", wantErr: "without a scheme"},
		{name: "registry twice", in: "[[registry]]\nhost = \"r\"\n[[registry]]\nhost = \"r\"\n", wantErr: "listed twice"},
		{name: "empty mirror", in: "[[registry]]\nhost = \"r\"\n[[registry.mirror]]\ninsecure = true\n", wantErr: "mirror[0].host: must not be empty"},
		{name: "bad metrics address", in: `metrics_address = "9781"`, wantErr: "metrics_address"},
		{name: "negative cache", in: "[cache]\nopen_files = -1\n", wantErr: "must not be negative"},
		{name: "not TOML", in: "root = \n", wantErr: "decoding snapshotter config"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseConfig([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
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

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("root = \"/srv\"\n[[registry]]\nhost = \"r:5000\"\n[[registry.mirror]]\nhost = \"m\"\ninsecure = true\n"))
	f.Add([]byte("[prefetch]\ndisabled = true\n[cache]\nmemory_entries = 3\n"))
	f.Add([]byte("containerd_restart_command = [\"\"]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		// Whatever parses renders to a file that parses to the same configuration.
		out, err := RenderSnapshotterConfig(c)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseConfig([]byte(out))
		if err != nil {
			t.Fatalf("rendered config does not parse: %v\n%s", err, out)
		}
		if diff := cmp.Diff(c, back); diff != "" {
			t.Fatalf("round trip (-parsed,+reparsed):\n%s", diff)
		}
	})
}
