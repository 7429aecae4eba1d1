package swf

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const sample = `; Version: 2.2
; MaxProcs: 128
; Note: the first note is kept
;       a continuation line without a colon is dropped
; Note: a second note is dropped
    2     1460     -1   3726  128     -1    -1   -1     -1    -1 -1   1   1  -1 -1 -1 -1 -1
    1        0     -1   1451  -1     -1    -1   64     1800    2048 1   7   2  -1 1 -1 -1 -1
    3     5198     -1   0  128     -1    -1   -1     -1    -1 -1   1   1  -1 -1 -1 -1 -1
    4     5198     -1   10  0     -1    -1   0     -1    -1 -1   1   1  -1 -1 -1 -1 -1
    5     5198     -1   10  8     -1
    6     x     -1   10  8     -1    -1   -1     -1    -1 -1   1   1  -1 -1 -1 -1 -1
    7     -5     -1   10  8     -1    -1   -1     -1    -1 -1   1   1  -1 -1 -1 -1 -1
    8     9000     -1   10  8     3.5    512   -1     -1    -1 0   3   1  -1 0 -1 -1 -1
`

func TestParse(t *testing.T) {
	want := &Log{
		Jobs: []Job{
			// Allocated processors unknown: the requested 64 count; requested memory 2048 KB per processor; the
			// declared walltime (field 9) 1800 s is kept.
			{ID: 1, Submit: 0, Wait: -1, RunTime: 1451, RequestedTime: 1800, Processors: 64, MemoryKB: 2048, Status: 1, User: 7, Group: 2, Queue: 1},
			{ID: 2, Submit: 1460, Wait: -1, RunTime: 3726, RequestedTime: -1, Processors: 128, MemoryKB: -1, Status: -1, User: 1, Group: 1, Queue: -1},
			// A fractional average CPU time is accepted; the used memory (512 KB) stands in for the request.
			{ID: 8, Submit: 9000, Wait: -1, RunTime: 10, RequestedTime: -1, Processors: 8, MemoryKB: 512, Status: 0, User: 3, Group: 1, Queue: 0},
		},
		Header:       map[string]string{"Version": "2.2", "MaxProcs": "128", "Note": "the first note is kept"},
		Skipped:      map[string]int{SkipRunTime: 1, SkipProcessors: 1, SkipFields: 1, SkipNumber: 1, SkipSubmit: 1},
		FirstSkipped: map[string]int{SkipRunTime: 8, SkipProcessors: 9, SkipFields: 10, SkipNumber: 11, SkipSubmit: 12},
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write([]byte(sample)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][]byte{"plain": []byte(sample), "gzip": gz.Bytes()} {
		t.Run(name, func(t *testing.T) {
			got, err := Parse(bytes.NewReader(in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Parse (-want,+got):\n%s", diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{name: "corrupt gzip", in: "\x1f\x8b\x00garbage", want: "gzip"},
		{name: "line too long", in: strings.Repeat("1 ", MaxLineBytes), want: "longer than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Parse error = %v, want one containing %q", err, c.want)
			}
		})
	}
}

// TestNASA reads the shared NASA iPSC log when it is beside the repository: the README says 18,239 jobs.
func TestNASA(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "traces", "pwa-nasa-ipsc-1993", "NASA-iPSC-1993-3.1-cln.swf.gz")
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("no shared trace: %v", err)
	}
	defer f.Close()
	log, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(log.Jobs) + log.SkippedTotal(); got != 18239 {
		t.Errorf("jobs + skipped = %d, want 18239", got)
	}
	if log.Header["MaxProcs"] != "128" {
		t.Errorf("MaxProcs header = %q, want 128", log.Header["MaxProcs"])
	}
	t.Logf("%d jobs, skipped %v", len(log.Jobs), log.Skipped)
}

// FuzzParse checks that no input panics and that every returned job is usable.
func FuzzParse(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte("1 0 -1 10 1 -1 -1 -1 -1 -1 -1 1 1 -1 -1 -1 -1 -1\n"))
	f.Add([]byte("; Key: value\n;:\n;\n"))
	f.Add([]byte("1 0 -1 1e400 1 -1 -1 -1 -1 -1 -1 1 1 -1 -1 -1 -1 NaN\n"))
	f.Add([]byte("\x1f\x8b"))
	f.Fuzz(func(t *testing.T, data []byte) {
		log, err := Parse(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, j := range log.Jobs {
			if j.Processors <= 0 || j.RunTime <= 0 || j.Submit < 0 {
				t.Fatalf("unusable job returned: %+v", j)
			}
		}
		for i := 1; i < len(log.Jobs); i++ {
			if log.Jobs[i].Submit < log.Jobs[i-1].Submit {
				t.Fatalf("jobs not in submit order at %d", i)
			}
		}
	})
}
