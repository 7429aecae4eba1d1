package convert

import (
	"path"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseFileList(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    []string
		wantErr string
	}{
		{name: "empty", in: "", want: nil},
		{
			name: "comments, blanks, relative and unclean paths",
			in:   "# start-up files of the pilot\n/usr/bin/python3\n\n  usr/lib/python3.11/os.py  \n/etc//pilot.conf\n",
			want: []string{"/usr/bin/python3", "/usr/lib/python3.11/os.py", "/etc/pilot.conf"},
		},
		{name: "dot-dot", in: "/usr/../etc/passwd\n", wantErr: "line 1"},
		{name: "root", in: "/\n", wantErr: "the root"},
		{name: "duplicate after cleaning", in: "/a/b\na//b\n", wantErr: "line 2: /a/b already listed on line 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseFileList(strings.NewReader(tc.in))
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

func FuzzParseFileList(f *testing.F) {
	f.Add("/usr/bin/python3\n# c\n\nusr/lib/x\n")
	f.Add("../x\n")
	f.Add("/a\n/a/\n")
	f.Fuzz(func(t *testing.T, in string) {
		files, err := ParseFileList(strings.NewReader(in))
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, p := range files {
			if p != path.Clean(p) || !strings.HasPrefix(p, "/") || p == "/" || seen[p] {
				t.Fatalf("invalid or repeated path %q in %q", p, files)
			}
			seen[p] = true
		}
	})
}
