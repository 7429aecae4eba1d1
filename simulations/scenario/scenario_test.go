package scenario

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const valid = `
name: tiny
cluster:
  pools:
  - {name: cpu, count: 2, cpu: "8", memory: 32Gi}
queues:
- {name: atlas, share: 3}
- {name: cms, share: 1}
duration: 2h
workloads:
- generate: {class: pilot, queue: atlas, count: 10, every: 1m, cpu: "8", memory: 16Gi, runtime: 30m}
- generate: {class: service, queue: cms, count: 2, replicas: 3, cpu: 500m, memory: 1Gi}
- swf: {path: log.swf}
`

func TestParseDefaults(t *testing.T) {
	s, err := Parse([]byte(valid), "/scenarios")
	if err != nil {
		t.Fatal(err)
	}
	got := struct {
		Profiles    []string
		Compression float64
		Seed        uint64
		CPU, Mem    string
		Path        string
	}{s.Profiles, s.Compression, s.Seed, s.Workloads[2].SWF.CPUPerProcessor, s.Workloads[2].SWF.MemoryPerProcessor, s.Resolve(s.Workloads[2].SWF.Path)}
	want := got
	want.Profiles, want.Compression, want.Seed = []string{"default-scheduler", "kubehtc"}, 60, 1
	want.CPU, want.Mem, want.Path = "1", "1Gi", "/scenarios/log.swf"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want,+got):\n%s", diff)
	}
}

// The policy's durations are read in simulated time; omitted fields read as 0 (the defaults).
func TestParsePolicy(t *testing.T) {
	for _, c := range []struct {
		policy             string
		halfLife, interval string
	}{
		{policy: "", halfLife: "0s", interval: "0s"},
		{policy: "policy: {halfLife: 2h}\n", halfLife: "2h0m0s", interval: "0s"},
		{policy: "policy: {halfLife: 6h, accountingInterval: 30s}\n", halfLife: "6h0m0s", interval: "30s"},
	} {
		s, err := Parse([]byte(valid+c.policy), "")
		if err != nil {
			t.Fatalf("%q: %v", c.policy, err)
		}
		got := []string{s.HalfLife().String(), s.AccountingInterval().String()}
		if diff := cmp.Diff([]string{c.halfLife, c.interval}, got); diff != "" {
			t.Errorf("%q: half-life, interval (-want,+got):\n%s", c.policy, diff)
		}
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name    string
		replace [2]string
		want    []string
	}{
		{name: "unknown field", replace: [2]string{"duration: 2h", "duraton: 2h"}, want: []string{`unknown field "duraton"`}},
		{name: "bad name", replace: [2]string{"name: tiny", "name: Tiny_1"}, want: []string{"name:", "DNS-1123"}},
		{name: "no cluster", replace: [2]string{"  - {name: cpu, count: 2, cpu: \"8\", memory: 32Gi}", ""}, want: []string{"cluster"}},
		{name: "pool count", replace: [2]string{"count: 2,", "count: 0,"}, want: []string{"cluster.pools[0].count"}},
		{name: "share", replace: [2]string{"share: 1}", "share: 0}"}, want: []string{"queues[1].share: must be positive"}},
		{name: "duplicate queue", replace: [2]string{"name: cms", "name: atlas"}, want: []string{`queues[1].name: "atlas" is declared twice`}},
		{name: "undeclared queue", replace: [2]string{"queue: atlas,", "queue: lhcb,"}, want: []string{`workloads[0].generate.queue: "lhcb" is not one of the scenario's queues`}},
		{name: "class", replace: [2]string{"class: pilot", "class: pilots"}, want: []string{`workloads[0].generate.class: "pilots"`}},
		{name: "cpu", replace: [2]string{`cpu: "8", memory: 16Gi`, `cpu: eight, memory: 16Gi`}, want: []string{`workloads[0].generate.cpu: "eight" is not a quantity`}},
		{name: "runtime", replace: [2]string{"runtime: 30m", "runtime: 0s"}, want: []string{"workloads[0].generate.runtime: must be positive"}},
		{name: "service without duration", replace: [2]string{"duration: 2h", ""}, want: []string{"workloads[1].generate.class: services run until the end"}},
		{name: "two sources", replace: [2]string{"- swf: {path: log.swf}", "- swf: {path: log.swf}\n  alibaba: {pods: p.csv}"}, want: []string{"workloads[2]: exactly one of swf, alibaba, generate"}},
		{name: "queueBy", replace: [2]string{"path: log.swf", "path: log.swf, queueBy: vo"}, want: []string{`workloads[2].swf.queueBy: "vo"`}},
		{name: "half-life", replace: [2]string{"duration: 2h", "duration: 2h\npolicy: {halfLife: 500ms}"}, want: []string{"policy.halfLife: must be at least 1s"}},
		{name: "accounting interval", replace: [2]string{"duration: 2h", "duration: 2h\npolicy: {accountingInterval: 0s}"}, want: []string{"policy.accountingInterval: must be at least 1s"}},
		{name: "policy field", replace: [2]string{"duration: 2h", "duration: 2h\npolicy: {decay: 1h}"}, want: []string{`unknown field "decay"`}},
		{name: "policy without queues", replace: [2]string{"queues:\n- {name: atlas, share: 3}\n- {name: cms, share: 1}\n", "policy: {halfLife: 1h}\n"}, want: []string{"policy: needs queues"}},
		{name: "members", replace: [2]string{"runtime: 30m}", "runtime: 30m, members: 4}"}, want: []string{"workloads[0].generate.members: only for class gang"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := strings.Replace(valid, c.replace[0], c.replace[1], 1)
			if in == valid {
				t.Fatalf("replacement %q not found", c.replace[0])
			}
			_, err := Parse([]byte(in), "")
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestRanges(t *testing.T) {
	r, err := ParseRanges([]byte(`
bounds:
  kubehtc/utilization_cpu: {min: 0.5, max: 0.9, source: measured 0.7}
  kubehtc/wait_p90_seconds: {max: 600, source: invariant}
  default-scheduler/makespan_seconds: {min: 10, source: trace length}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, e := range r.Check(map[string]float64{"kubehtc/utilization_cpu": 0.95, "kubehtc/wait_p90_seconds": 600}) {
		got = append(got, e.Error())
	}
	want := []string{
		"default-scheduler/makespan_seconds: not in the results",
		"kubehtc/utilization_cpu = 0.95 is above its range [0.5, 0.9] (measured 0.7)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Check (-want,+got):\n%s", diff)
	}
	for _, bad := range []struct{ in, want string }{
		{"bounds:\n  a/b: {min: 1}\n", "bounds[a/b].source: required"},
		{"bounds:\n  ab: {min: 1, source: x}\n", "key must be <profile>/<metric>"},
		{"bounds:\n  a/b: {min: 2, max: 1, source: x}\n", "min 2 is above max 1"},
		{"bounds:\n  a/b: {source: x}\n", "min or max is required"},
		{"bound: {}\n", "unknown field"},
	} {
		if _, err := ParseRanges([]byte(bad.in)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ParseRanges(%q) error = %v, want %q", bad.in, err, bad.want)
		}
	}
}
