package arcrest

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The JSON documents A-REX's own clients parse. Each shape is pinned to where it comes from:
//   - A-REX renders every answer with RenderToJson (nordugrid/arc src/services/a-rex/rest/rest.cpp): root
//     dropped; an element without child elements becomes its text, attributes dropped; an element name
//     seen once is a value, repeated an array; attributes of an element with children go under
//     "_attributes"; an empty root gives an empty body.
//   - The session listing is <list><file size="N">name</file>…<dir>name</dir></list> (rest.cpp, GET on
//     jobs/<id>/session/<path>); pyarcrest's _addTransfersFromListing (maikenp/pyarcrest
//     src/pyarcrest/arc.py) joins each listing["file"] / listing["dir"] entry into a path, so they must be
//     plain names, a single one not in an array ("/rest/1.0 compatibility").
//   - pyarcrest's getJobsList and getDelegationsList read json.loads(text)["job"] / ["delegation"] and
//     treat an empty body (JSONDecodeError with doc == "") as "none"; "{}" would raise KeyError.
//   - pyarcrest's deleteDelegation accepts only 200.
func TestJSONShapesOfAREX(t *testing.T) {
	tests := []struct {
		name string
		doc  *node
		want string // the exact body
	}{
		{
			name: "listing of two files and a directory: plain names, files as an array",
			doc: el("list", withAttr(leaf("file", "in1.dat"), "size", "9"), withAttr(leaf("file", "out.txt"), "size", "3"),
				leaf("dir", "logs")),
			want: `{"dir":"logs","file":["in1.dat","out.txt"]}`,
		},
		{
			name: "listing of one file: a value, not an array",
			doc:  el("list", withAttr(leaf("file", "stdout"), "size", "120")),
			want: `{"file":"stdout"}`,
		},
		{name: "empty listing: empty body", doc: el("list"), want: ``},
		{name: "no jobs: empty body", doc: el("jobs"), want: ``},
		{
			name: "attributes of an element with children",
			doc:  el("Domains", withAttr(el("AdminDomain", leaf("Name", "x")), "BaseType", "Domain")),
			want: `{"AdminDomain":{"Name":"x","_attributes":{"BaseType":"Domain"}}}`,
		},
		{
			name: "namespace declarations are not attributes",
			doc:  withAttr(el("Domains", leaf("AdminDomain", "x")), "xmlns", glue2NS),
			want: `{"AdminDomain":"x"}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			if err := tc.doc.writeJSON(&b); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, strings.TrimSuffix(b.String(), "\n")); diff != "" {
				t.Errorf("JSON (-want,+got):\n%s", diff)
			}
		})
	}
}

func withAttr(n *node, name, value string) *node {
	n.attrs = append(n.attrs, xml.Attr{Name: xml.Name{Local: name}, Value: value})
	return n
}

// Through the server: what pyarcrest's downloadListing, getJobsList and getDelegationsList receive.
func TestJSONShapesThroughTheServer(t *testing.T) {
	f := newFixture(t)
	user := caller{chain: f.certs.userProxy}
	js := []string{"Accept", "application/json"}
	if rec := f.do(user, "GET", APIPath+"/jobs", "", js...); rec.Code != 200 || rec.Body.Len() != 0 {
		t.Errorf("no jobs: %d %q, want 200 and an empty body", rec.Code, rec.Body.String())
	}
	if rec := f.do(user, "GET", APIPath+"/delegations", "", js...); rec.Code != 200 || rec.Body.Len() != 0 {
		t.Errorf("no delegations: %d %q, want 200 and an empty body", rec.Code, rec.Body.String())
	}
	id := f.submit(user, job)
	session := APIPath + "/jobs/" + id + "/session"
	if rec := f.do(user, "GET", session, "", js...); rec.Code != 200 || rec.Body.Len() != 0 {
		t.Errorf("empty session directory: %d %q, want 200 and an empty body", rec.Code, rec.Body.String())
	}
	if rec := f.do(user, "PUT", session+"/run.sh", "#!/bin/sh\n"); rec.Code != 200 {
		t.Fatalf("upload: %d %s", rec.Code, rec.Body.String())
	}
	if rec := f.do(user, "GET", session, "", js...); strings.TrimSpace(rec.Body.String()) != `{"file":"run.sh"}` {
		t.Errorf("one file: %q, want {\"file\":\"run.sh\"}", rec.Body.String())
	}
	if rec := f.do(user, "PUT", session+"/in.dat", "123456789"); rec.Code != 200 {
		t.Fatalf("upload: %d %s", rec.Code, rec.Body.String())
	}
	if rec := f.do(user, "GET", session, "", js...); strings.TrimSpace(rec.Body.String()) != `{"file":["in.dat","run.sh"]}` {
		t.Errorf("two files: %q, want {\"file\":[\"in.dat\",\"run.sh\"]}", rec.Body.String())
	}
	// XML keeps the size attribute (the ARC client reads it).
	if rec := f.do(user, "GET", session, ""); !strings.Contains(rec.Body.String(), `<file size="9">in.dat</file>`) {
		t.Errorf("XML listing: %s", rec.Body.String())
	}
}

// Bulk submission: a cap per request (413 beyond, saying so), one item per description in order with its
// own error, and each job keeping only its own description.
func TestBulkSubmission(t *testing.T) {
	f := newFixture(t)
	user := caller{chain: f.certs.userProxy}
	tooMany := "+" + strings.Repeat(`(&(executable="/bin/true"))`, DefaultMaxJobsPerRequest+1)
	if rec := f.do(user, "POST", APIPath+"/jobs?action=new", tooMany); rec.Code != 413 ||
		!strings.Contains(rec.Body.String(), "1001 job descriptions in one request, at most 1000") {
		t.Errorf("%d descriptions: %d %s, want 413 naming the cap", DefaultMaxJobsPerRequest+1, rec.Code, rec.Body.String())
	}
	body := `+(&(executable="/bin/true")(jobname="first"))(&(executable="/bin/true")(count=))(&(executable="/bin/true")(jobname="third"))`
	rec := f.do(user, "POST", APIPath+"/jobs?action=new", body)
	d := decodeJobs(t, rec)
	if rec.Code != 201 || len(d.Jobs) != 3 || d.Jobs[0].Code != 201 || d.Jobs[1].Code != 500 || d.Jobs[2].Code != 201 ||
		!strings.Contains(d.Jobs[1].Reason, "count") {
		t.Fatalf("bulk with one bad description: %d %s, want items 201, 500 (naming count), 201", rec.Code, rec.Body.String())
	}
	for i, want := range map[int]string{0: `&(executable="/bin/true")(jobname="first")`, 2: `&(executable="/bin/true")(jobname="third")`} {
		got := f.do(user, "GET", APIPath+"/jobs/"+d.Jobs[i].ID+"/diagnose/description", "")
		if strings.TrimSpace(got.Body.String()) != want {
			t.Errorf("job %d stored description %q, want only its own %q", i, got.Body.String(), want)
		}
	}
}
