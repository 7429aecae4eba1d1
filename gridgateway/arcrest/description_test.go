package arcrest

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/kubehtc/kubehtc/gridgateway/session"
	"github.com/kubehtc/kubehtc/gridgateway/translate"
)

// adlFromArcsub is the shape of what arcsub 6.17 sends for a small xRSL job (one input uploaded, one
// output kept, an RTE, a delegation).
const adlFromArcsub = `<?xml version="1.0"?>
<ActivityDescription xmlns="http://www.eu-emi.eu/es/2010/12/adl" xmlns:emiestypes="http://www.eu-emi.eu/es/2010/12/types" xmlns:nordugrid-adl="http://www.nordugrid.org/es/2011/12/nordugrid-adl">
  <ActivityIdentification><Name>pilot-1</Name></ActivityIdentification>
  <Application>
    <Executable><Path>run.sh</Path><Argument>-s</Argument><Argument>SITE</Argument></Executable>
    <Output>out.txt</Output>
    <Error>err.txt</Error>
    <Environment><Name>PANDA_JSID</Name><Value>harvester-1</Value></Environment>
    <nordugrid-adl:LoggingDirectory>log</nordugrid-adl:LoggingDirectory>
  </Application>
  <Resources>
    <QueueName>atlas-prod</QueueName>
    <IndividualPhysicalMemory>2097152000</IndividualPhysicalMemory>
    <DiskSpaceRequirement>5242880000</DiskSpaceRequirement>
    <WallTime>7200</WallTime>
    <TotalCPUTime>57600</TotalCPUTime>
    <SlotRequirement><NumberOfSlots>8</NumberOfSlots><SlotsPerHost>8</SlotsPerHost></SlotRequirement>
    <RuntimeEnvironment><Name>ENV/PROXY</Name></RuntimeEnvironment>
  </Resources>
  <DataStaging>
    <nordugrid-adl:DelegationID>0123456789abcdef</nordugrid-adl:DelegationID>
    <InputFile><Name>run.sh</Name></InputFile>
    <InputFile><Name>input.dat</Name><Source><URI>file:///home/user/input.dat</URI></Source></InputFile>
    <OutputFile><Name>out.txt</Name></OutputFile>
    <OutputFile><Name>result.dat</Name></OutputFile>
    <OutputFile><Name>log/</Name></OutputFile>
    <OutputFile><Name>log</Name></OutputFile>
  </DataStaging>
</ActivityDescription>`

// adlFromArcsubNoDelegation is adlFromArcsub for a client without delegation (ENV/PROXY removed).
var adlFromArcsubNoDelegation = strings.NewReplacer(
	"<RuntimeEnvironment><Name>ENV/PROXY</Name></RuntimeEnvironment>", "",
	"<nordugrid-adl:DelegationID>0123456789abcdef</nordugrid-adl:DelegationID>", "",
	"<IndividualPhysicalMemory>2097152000</IndividualPhysicalMemory>", "",
	"<DiskSpaceRequirement>5242880000</DiskSpaceRequirement>", "").Replace(adlFromArcsub)

func TestParseADL(t *testing.T) {
	wantArcsub := &JobRequest{
		Description: translate.Description{
			Name: "pilot-1", Queue: "atlas-prod", Cores: 8,
			MemoryMiB:       8 * 2000, // 2097152000 B per slot = 2000 MiB, times 8 slots
			DiskMiB:         5000,     // 5242880000 B
			WallTimeSeconds: 7200,
			Executable:      "./run.sh", Arguments: []string{"-s", "SITE"},
			Environment:         map[string]string{"PANDA_JSID": "harvester-1"},
			RuntimeEnvironments: []string{"ENV/PROXY"},
			Inputs:              []string{"run.sh", "input.dat"},
			Outputs:             []string{"out.txt", "result.dat"},
		},
		DelegationID: "0123456789abcdef", Stdout: "out.txt", Stderr: "err.txt", LogDir: "log",
	}
	minimal := `<ActivityDescription xmlns="http://www.eu-emi.eu/es/2010/12/adl"><Application><Executable><Path>/bin/true</Path></Executable></Application></ActivityDescription>`
	cases := []struct {
		name    string
		body    string
		want    *JobRequest
		wantErr string
	}{
		{name: "as arcsub sends it", body: adlFromArcsub, want: wantArcsub},
		{name: "minimal", body: minimal, want: &JobRequest{Description: translate.Description{Cores: 1, Executable: "/bin/true"}}},
		{
			name: "cpu time without wall time is spread over the slots",
			body: `<ActivityDescription><Resources><TotalCPUTime>3601</TotalCPUTime><SlotRequirement><NumberOfSlots>2</NumberOfSlots></SlotRequirement></Resources></ActivityDescription>`,
			want: &JobRequest{Description: translate.Description{Cores: 2, WallTimeSeconds: 1801}}, // ceil(3601/2)
		},
		{
			name:    "multi-node",
			body:    `<ActivityDescription><Resources><SlotRequirement><NumberOfSlots>16</NumberOfSlots><SlotsPerHost>8</SlotsPerHost></SlotRequirement></Resources></ActivityDescription>`,
			wantErr: "multi-node",
		},
		{name: "remote input", body: `<ActivityDescription><DataStaging><InputFile><Name>a</Name><Source><URI>https://x/a</URI></Source></InputFile></DataStaging></ActivityDescription>`, wantErr: "remote source"},
		{name: "remote output", body: `<ActivityDescription><DataStaging><OutputFile><Name>a</Name><Target><URI>gsiftp://x/a</URI></Target></OutputFile></DataStaging></ActivityDescription>`, wantErr: "remote target"},
		{name: "input climbing out", body: `<ActivityDescription><DataStaging><InputFile><Name>../etc/passwd</Name></InputFile></DataStaging></ActivityDescription>`, wantErr: "inside the session directory"},
		{name: "absolute stdout", body: `<ActivityDescription><Application><Output>/etc/x</Output></Application></ActivityDescription>`, wantErr: "inside the session directory"},
		{name: "negative memory", body: `<ActivityDescription><Resources><IndividualPhysicalMemory>-1</IndividualPhysicalMemory></Resources></ActivityDescription>`, wantErr: "IndividualPhysicalMemory"},
		{name: "not a number", body: `<ActivityDescription><Resources><WallTime>PT1H</WallTime></Resources></ActivityDescription>`, wantErr: "WallTime"},
		{name: "not XML", body: `<ActivityDescription><Resources>`, wantErr: "ADL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseADL([]byte(tc.body))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrDescription) {
					t.Fatalf("error %v, want one mentioning %q wrapping ErrDescription", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want,+got):\n%s", diff)
			}
		})
	}
}

func TestParseDescriptionsBulk(t *testing.T) {
	one := `<ActivityDescription xmlns="http://www.eu-emi.eu/es/2010/12/adl"><ActivityIdentification><Name>%s</Name></ActivityIdentification></ActivityDescription>`
	cases := []struct {
		name      string
		body      string
		wantNames []string // "!" for a description with its own error
		wantRaws  []string // each job's own text, when checked
		wantErr   string
	}{
		{name: "one ADL", body: strings.ReplaceAll(one, "%s", "a"), wantNames: []string{"a"}},
		{name: "wrapped ADLs", body: `<ActivityDescriptions xmlns:nordugrid-adl="http://www.nordugrid.org/es/2011/12/nordugrid-adl">` +
			strings.ReplaceAll(one, "%s", "a") + strings.ReplaceAll(one, "%s", "b") + `</ActivityDescriptions>`, wantNames: []string{"a", "b"}},
		{name: "one xRSL", body: `&(executable="/bin/true")(jobname="x")`, wantNames: []string{"x"}},
		{name: "multi xRSL", body: `+(&(jobname="x"))(&(jobname="y"))`, wantNames: []string{"x", "y"},
			wantRaws: []string{`&(jobname="x")`, `&(jobname="y")`}},
		// One bad description gets its own item; the others are still created (docs/gateway.md).
		{name: "multi xRSL, one syntax error", body: `+(&(jobname="x"))(&(jobname="y" (*c*) )(count=))(&(jobname="z)"))`,
			wantNames: []string{"x", "!", "z)"}},
		{name: "multi ADL, one bad", body: `<ActivityDescriptions>` + strings.ReplaceAll(one, "%s", "a") +
			`<ActivityDescription xmlns="http://www.eu-emi.eu/es/2010/12/adl"><Resources><SlotRequirement><NumberOfSlots>x</NumberOfSlots></SlotRequirement></Resources></ActivityDescription>` +
			`</ActivityDescriptions>`, wantNames: []string{"a", "!"}},
		{name: "unbalanced multi xRSL", body: `+(&(jobname="x")`, wantErr: "unbalanced"},
		// arcsub 6.17's broken multi-job body (../shared/reference/arc-rest.md, client quirks).
		{name: "arcsub multi-job bug", body: `</ActivityDescriptions>`, wantErr: "well-formed"},
		{name: "empty wrapper", body: `<ActivityDescriptions></ActivityDescriptions>`, wantErr: "no <ActivityDescription>"},
		{name: "neither", body: `{"job": 1}`, wantErr: "neither ADL"},
		{name: "empty", body: "  \n", wantErr: "empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			descs, err := parseDescriptions([]byte(tc.body))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names, raws []string
			for _, d := range descs {
				if d.err != nil {
					names = append(names, "!")
				} else {
					names = append(names, d.req.Description.Name)
				}
				raws = append(raws, string(d.raw))
			}
			if diff := cmp.Diff(tc.wantNames, names); diff != "" {
				t.Errorf("(-want,+got):\n%s", diff)
			}
			if tc.wantRaws != nil {
				if diff := cmp.Diff(tc.wantRaws, raws); diff != "" {
					t.Errorf("each job's own text (-want,+got):\n%s", diff)
				}
			}
		})
	}
}

func TestParseXRSL(t *testing.T) {
	cases := []struct {
		name    string
		body    string
		want    *JobRequest
		wantErr string
	}{
		{
			name: "pilot as aCT writes it",
			body: `&(executable="runpilot2-wrapper.sh")(arguments="-s" "SITE" "-w" "generic")(jobname = "pilot (* a comment *)")
				(count=8)(countpernode=8)(memory=2000)(disk=5000)(walltime="120 min")(cputime=960)
				(queue="atlas-prod")(runtimeenvironment="APPS/HEP/ATLAS-SITE")(runtimeenvironment="ENV/PROXY")
				(environment=("PANDA_JSID" "harvester-1")("PILOT_NOKILL" "YES"))
				(inputfiles=("runpilot2-wrapper.sh" "")("queuedata.json" "/local/queuedata.json"))
				(outputfiles=("result.dat" "")("gmlog" ""))(stdout="out.txt")(join=yes)(gmlog="gmlog")(priority=50)(rerun=2)`,
			want: &JobRequest{
				Description: translate.Description{
					Name: "pilot (* a comment *)", Queue: "atlas-prod", Cores: 8,
					MemoryMiB:       16000, // 2000 MB per slot × 8
					DiskMiB:         5000,
					WallTimeSeconds: 7200, // 120 min
					Executable:      "./runpilot2-wrapper.sh", Arguments: []string{"-s", "SITE", "-w", "generic"},
					Environment:         map[string]string{"PANDA_JSID": "harvester-1", "PILOT_NOKILL": "YES"},
					RuntimeEnvironments: []string{"APPS/HEP/ATLAS-SITE", "ENV/PROXY"},
					Inputs:              []string{"runpilot2-wrapper.sh", "queuedata.json"},
					Outputs:             []string{"result.dat"},
				},
				Stdout: "out.txt", Stderr: "out.txt", LogDir: "gmlog",
			},
		},
		{
			name: "cputime only, in hours, over 4 slots",
			body: `&(executable=/bin/true)(count=4)(cputime="2 hours")`,
			want: &JobRequest{Description: translate.Description{Cores: 4, Executable: "/bin/true", WallTimeSeconds: 1800}}, // 7200 s / 4
		},
		{
			name: "HH:MM:SS wall time, doubled quotes, concatenation",
			body: `&(executable="/bin/echo")(arguments="say ""hi""" "a" # "b")(walltime="01:30:00")`,
			want: &JobRequest{Description: translate.Description{Cores: 1, Executable: "/bin/echo", Arguments: []string{`say "hi"`, "ab"}, WallTimeSeconds: 5400}},
		},
		{name: "remote input", body: `&(inputfiles=("a" "https://host/a"))`, wantErr: "remote source"},
		{name: "multi-node", body: `&(count=16)(countpernode=8)`, wantErr: "multi-node"},
		{name: "bad operator", body: `&(count>1)`, wantErr: "only '='"},
		{name: "unterminated", body: `&(executable="/bin/true)`, wantErr: "unterminated"},
		{name: "unbalanced", body: `&(executable=/bin/true`, wantErr: "end of the description"},
		{name: "no relation", body: `&`, wantErr: "no relation"},
		{name: "variable", body: `&(executable=$(HOME)/x)`, wantErr: "variables"},
		{name: "bad duration", body: `&(walltime="soon")`, wantErr: "walltime"},
		{name: "path traversal in stdout", body: `&(stdout="../../x")`, wantErr: "inside the session directory"},
		{name: "deep nesting", body: `&(environment=` + strings.Repeat("(", 40) + strings.Repeat(")", 40) + `)`, wantErr: "nested deeper"},
		{name: "trailing text", body: `&(count=1) junk`, wantErr: "after the description"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseXRSL(tc.body)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrDescription) {
					t.Fatalf("error %v, want one mentioning %q wrapping ErrDescription", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("%d jobs, want 1", len(got))
			}
			if diff := cmp.Diff(tc.want, got[0], cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want,+got):\n%s", diff)
			}
		})
	}
}

// checkRequest asserts what any parsed request must satisfy.
func checkRequest(t *testing.T, jr *JobRequest) {
	t.Helper()
	d := jr.Description
	if d.Cores < 1 || d.MemoryMiB < 0 || d.DiskMiB < 0 || d.WallTimeSeconds < 0 {
		t.Fatalf("impossible resources: %+v", d)
	}
	for _, f := range append(append([]string{jr.Stdout, jr.Stderr, jr.LogDir}, d.Inputs...), d.Outputs...) {
		if _, err := session.CleanPath(f); err != nil {
			t.Fatalf("parser let through a path outside the session: %q", f)
		}
	}
}

func FuzzParseADL(f *testing.F) {
	f.Add([]byte(adlFromArcsub))
	f.Add([]byte(`<ActivityDescriptions><ActivityDescription/><ActivityDescription><Resources><WallTime>1</WallTime></Resources></ActivityDescription></ActivityDescriptions>`))
	f.Add([]byte(`</ActivityDescriptions>`))
	f.Add([]byte(`<ActivityDescription><Resources><IndividualPhysicalMemory>9223372036854775807</IndividualPhysicalMemory><SlotRequirement><NumberOfSlots>2147483647</NumberOfSlots></SlotRequirement></Resources></ActivityDescription>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		descs, err := parseDescriptions(body)
		if err != nil {
			if !errors.Is(err, ErrDescription) || err.Error() == "" {
				t.Fatalf("error %v does not wrap ErrDescription", err)
			}
			return
		}
		for _, d := range descs {
			if d.err != nil {
				if !errors.Is(d.err, ErrDescription) {
					t.Fatalf("description error %v does not wrap ErrDescription", d.err)
				}
				continue
			}
			checkRequest(t, d.req)
		}
	})
}

func FuzzParseXRSL(f *testing.F) {
	f.Add(`&(executable="runpilot2-wrapper.sh")(count=8)(memory=2000)(walltime="120 min")(inputfiles=("a" ""))(environment=("A" "b"))`)
	f.Add(`+(&(jobname="x"))(&(jobname="y")(stdout=^/out^/))`)
	f.Add(`&(arguments="a" # "b")(cputime="01:02:03")(* comment *)`)
	f.Add(`&(count=9223372036854775807)(memory=1099511627776)`)
	f.Fuzz(func(t *testing.T, body string) {
		reqs, err := ParseXRSL(body)
		if err != nil {
			if !errors.Is(err, ErrDescription) {
				t.Fatalf("error %v does not wrap ErrDescription", err)
			}
			return
		}
		for _, jr := range reqs {
			checkRequest(t, jr)
		}
	})
}
