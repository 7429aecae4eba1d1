package apel

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func sampleRecord() Record {
	return Record{
		Site: "UKI-TEST", SubmitHost: "ce.example.org:443/kubehtc", MachineName: "ce.example.org", Queue: "atlas-prod",
		LocalJobID: "atlas.gj-1", LocalUserID: "atlpilo1", GlobalUserName: "/DC=ch/DC=cern/CN=atlpilo1",
		FQAN: "/atlas/Role=production/Capability=NULL", VO: "atlas", WallDuration: 3600, CPUDuration: 28800,
		Processors: 8, NodeCount: 1, StartTime: 1764547200, EndTime: 1764550800,
		InfrastructureDescription: "APEL-KUBEHTC-KUBERNETES", InfrastructureType: "grid",
		ServiceLevelType: ServiceLevelHEPscore23, ServiceLevel: 17.5,
	}
}

// The message layout is APEL's: header, "Key: value" lines in JobRecord._msg_fields order, "%%" after each
// record (apel/db/records/job.py; the v0.3 message format).
func TestIndividualMessage(t *testing.T) {
	got := string(IndividualMessage([]Record{sampleRecord()}))
	want := `APEL-individual-job-message: v0.3
Site: UKI-TEST
SubmitHost: ce.example.org:443/kubehtc
MachineName: ce.example.org
Queue: atlas-prod
LocalJobId: atlas.gj-1
LocalUserId: atlpilo1
GlobalUserName: /DC=ch/DC=cern/CN=atlpilo1
FQAN: /atlas/Role=production/Capability=NULL
VO: atlas
WallDuration: 3600
CpuDuration: 28800
Processors: 8
NodeCount: 1
StartTime: 1764547200
EndTime: 1764550800
InfrastructureDescription: APEL-KUBEHTC-KUBERNETES
InfrastructureType: grid
ServiceLevelType: HEPscore23
ServiceLevel: 17.5
%%
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("message (-want,+got):\n%s", diff)
	}
	back, err := ParseRecords(strings.NewReader(got))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Record{sampleRecord()}, back); diff != "" {
		t.Errorf("parsed back (-want,+got):\n%s", diff)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Record)
		want   string // substring of the error; "" for valid
	}{
		{name: "valid", change: func(*Record) {}},
		{name: "no site", change: func(r *Record) { r.Site = "" }, want: "Site"},
		{name: "no job id", change: func(r *Record) { r.LocalJobID = "" }, want: "LocalJobId"},
		{name: "end before start", change: func(r *Record) { r.EndTime = r.StartTime - 1 }, want: "before StartTime"},
		{name: "type without level", change: func(r *Record) { r.ServiceLevel = 0 }, want: "ServiceLevel"},
		{name: "line break", change: func(r *Record) { r.GlobalUserName = "/CN=a\nSite: evil" }, want: "GlobalUserName"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := sampleRecord()
			tc.change(&r)
			err := r.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate() = %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

func TestSplitFQAN(t *testing.T) {
	tests := []struct{ fqan, group, role string }{
		{"/atlas/Role=production/Capability=NULL", "/atlas", "Role=production"},
		{"/atlas/usatlas/Role=NULL", "/atlas/usatlas", "Role=NULL"},
		{"/cms", "/cms", ""},
		{"", "", ""},
	}
	for _, tc := range tests {
		g, r := SplitFQAN(tc.fqan)
		if g != tc.group || r != tc.role {
			t.Errorf("SplitFQAN(%q) = %q, %q; want %q, %q", tc.fqan, g, r, tc.group, tc.role)
		}
	}
}

// Summaries group by month of EndTime (UTC) and the SummaryRecord key fields; durations add up.
func TestSummarise(t *testing.T) {
	a := sampleRecord()
	b := sampleRecord()
	b.LocalJobID, b.EndTime, b.WallDuration, b.CPUDuration = "atlas.gj-2", a.EndTime+100, 100, 800
	c := sampleRecord() // next month (2026-01-01 00:00:10 UTC)
	c.LocalJobID, c.StartTime, c.EndTime = "atlas.gj-3", 1767225600, 1767225610
	d := sampleRecord() // another user
	d.LocalJobID, d.GlobalUserName = "atlas.gj-4", "/DC=ch/DC=cern/CN=other"
	got := Summarise([]Record{a, b, c, d})
	if len(got) != 3 {
		t.Fatalf("got %d summaries, want 3: %+v", len(got), got)
	}
	// a and b: December 2025, wall 3600+100, cpu 28800+800, 2 jobs.
	s := got[0]
	if s.GlobalUserName != a.GlobalUserName {
		s = got[1]
	}
	want := Summary{Site: "UKI-TEST", Month: 12, Year: 2025, GlobalUserName: a.GlobalUserName, VO: "atlas",
		VOGroup: "/atlas", VORole: "Role=production", SubmitHost: a.SubmitHost, InfrastructureType: "grid",
		ServiceLevelType: ServiceLevelHEPscore23, ServiceLevel: 17.5, NodeCount: 1, Processors: 8,
		EarliestEndTime: a.EndTime, LatestEndTime: a.EndTime + 100, WallDuration: 3700, CPUDuration: 29600, NumberOfJobs: 2}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("December summary (-want,+got):\n%s", diff)
	}
	msg := string(SummaryMessage(got))
	if !strings.HasPrefix(msg, SummaryHeader+"\n") || strings.Count(msg, "\n%%\n") != 3 || !strings.Contains(msg, "NumberOfJobs: 2\n") {
		t.Errorf("summary message:\n%s", msg)
	}
}

var (
	dirqDir  = regexp.MustCompile(`^[0-9a-f]{8}$`)
	dirqElem = regexp.MustCompile(`^[0-9a-f]{14}$`)
)

func TestSpoolCommitAndRecover(t *testing.T) {
	dir := t.TempDir()
	sp, err := NewSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	sp.now = func() time.Time { return time.Unix(1764550900, 123456789) }
	r1, r2 := sampleRecord(), sampleRecord()
	r2.LocalJobID = "atlas.gj-2"
	if err := sp.Stage("atlas_gj-1_u1", r1); err != nil {
		t.Fatal(err)
	}
	if err := sp.Stage("atlas_gj-1_u1", r1); err != nil { // staging twice is one record
		t.Fatal(err)
	}
	if err := sp.Stage("atlas_gj-2_u2", r2); err != nil {
		t.Fatal(err)
	}
	elem, err := sp.Commit([]string{"atlas_gj-1_u1", "atlas_gj-2_u2"})
	if err != nil {
		t.Fatal(err)
	}
	d, e, _ := strings.Cut(elem, "/")
	if !dirqDir.MatchString(d) || !dirqElem.MatchString(e) {
		t.Errorf("element %q does not match dirq's [0-9a-f]{8}/[0-9a-f]{14}", elem)
	}
	// 1764550900 s rounded down to 60 s is 1764550860 = 0x692ce8cc; 123456789 ns = 12345 (0x3039) × 10 µs.
	if d != "692ce8cc" || !strings.HasPrefix(e, "692ce8f403039") {
		t.Errorf("element %s, want 692ce8cc/692ce8f403039<pid digit>", elem)
	}
	msgs, err := sp.OutgoingMessages()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("outgoing %v, %v: want one message", msgs, err)
	}
	data, _ := os.ReadFile(msgs[0])
	recs, err := ParseRecords(bytes.NewReader(data))
	if err != nil || len(recs) != 2 || !strings.HasPrefix(string(data), IndividualHeader+"\n") {
		t.Fatalf("message %q: %d records, %v", data, len(recs), err)
	}
	if left, _ := sp.Staged(); len(left) != 0 {
		t.Errorf("staged after commit: %v", left)
	}
	sum, err := os.ReadFile(filepath.Join(dir, "summaries", "2025-12"))
	if err != nil || !strings.Contains(string(sum), "NumberOfJobs: 2\n") {
		t.Errorf("summary %q, %v", sum, err)
	}

	// A batch left half-done by a crash (records moved in, element never written) is finished once.
	batch := filepath.Join(dir, "batches", "692d4b1c_692d4b1c00001a")
	if err := os.MkdirAll(batch, 0o755); err != nil {
		t.Fatal(err)
	}
	r3 := sampleRecord()
	r3.LocalJobID = "atlas.gj-3"
	var b bytes.Buffer
	r3.WriteTo(&b)
	if err := os.WriteFile(filepath.Join(batch, "atlas_gj-3_u3"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := sp.Recover(); err != nil {
			t.Fatal(err)
		}
	}
	msgs, _ = sp.OutgoingMessages()
	if len(msgs) != 2 || filepath.Base(msgs[1]) != "692d4b1c00001a" {
		t.Errorf("outgoing after recovery: %v, want the recovered element second", msgs)
	}
	ledger, err := sp.Ledger("2025-12")
	if err != nil || len(ledger) != 3 {
		t.Errorf("ledger has %d records (%v), want 3", len(ledger), err)
	}
	// The element of a batch is written at most once: recovering a batch whose element exists adds nothing.
	if err := os.MkdirAll(batch, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(batch, "atlas_gj-3_u3"), b.Bytes(), 0o644)
	if err := sp.Recover(); err != nil {
		t.Fatal(err)
	}
	if msgs, _ = sp.OutgoingMessages(); len(msgs) != 2 {
		t.Errorf("outgoing after a second recovery: %v", msgs)
	}
}
