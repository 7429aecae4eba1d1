package translate

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/gridgateway/config"
)

const testSite = `
audiences: [https://gateway.example.org]
issuers:
- {url: https://atlas-auth.example.org/, jwksFile: /dev/null}
vos:
- name: atlas
  namespace: atlas
  tokens: [{issuer: https://atlas-auth.example.org/, group: /atlas/pilot}]
- name: cms
  namespace: cms
  certificates: [{dn: "/DC=ch/DC=cern/OU=cms/.*"}]
queues:
- name: atlas-prod
  vos: [atlas]
  image: registry.example.org/atlas/pilot:1
  priorityClassName: grid-production
  nodeSelector: {kubehtc.io/pool: cpu}
  podLabels: {team: adc}
  defaultWallTimeSeconds: 3600
  limits: {maxCores: 64, maxWallTimeSeconds: 172800}
- name: cms-prod
  vos: [cms]
  image: registry.example.org/cms/pilot:1
runtimeEnvironments:
- name: APPS/HEP/ATLAS-SITE
  cvmfs: [atlas.cern.ch, atlas-condb.cern.ch, sft.cern.ch]
  env: {ATLAS_LOCAL_ROOT_BASE: /cvmfs/atlas.cern.ch/repo/ATLASLocalRootBase}
- name: ENV/PROXY
  mountCredential: true
`

func site(t testing.TB) *config.Site {
	t.Helper()
	s, err := config.Parse([]byte(testSite))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTranslate(t *testing.T) {
	s := site(t)
	cases := []struct {
		name    string
		vo      string
		in      Description
		want    kubehtcv1alpha1.GridJobDescription
		wantErr error
		errText string
	}{{
		name: "defaults from the queue",
		vo:   "atlas",
		in:   Description{Queue: "atlas-prod"},
		// 1 core x 2000 MiB default; the queue's default wall time; the queue's image, class, selector.
		want: kubehtcv1alpha1.GridJobDescription{
			Cores: 1, MemoryMiB: 2000, WallTimeSeconds: 3600, Image: "registry.example.org/atlas/pilot:1",
			PriorityClassName: "grid-production", NodeSelector: map[string]string{"kubehtc.io/pool": "cpu"},
			PodLabels: map[string]string{"team": "adc"},
		},
	}, {
		name: "ATLAS pilot with runtime environments",
		vo:   "atlas",
		in: Description{
			Name: "pilot-1", Queue: "atlas-prod", Cores: 8, MemoryMiB: 16000, WallTimeSeconds: 7200, DiskMiB: 5000,
			Executable: "runpilot2-wrapper.sh", Arguments: []string{"-s", "CERN"},
			Environment:         map[string]string{"PANDA_JSID": "harvester-1", "ATLAS_LOCAL_ROOT_BASE": "/override"},
			RuntimeEnvironments: []string{"APPS/HEP/ATLAS-SITE", "ENV/PROXY", "ENV/PROXY"},
			Inputs:              []string{"queuedata.json"}, Outputs: []string{"pilotlog.txt"},
		},
		want: kubehtcv1alpha1.GridJobDescription{
			Name: "pilot-1", Cores: 8, MemoryMiB: 16000, WallTimeSeconds: 7200, DiskMiB: 5000,
			Image: "registry.example.org/atlas/pilot:1", Command: []string{"runpilot2-wrapper.sh"}, Args: []string{"-s", "CERN"},
			// The description's variable wins over the runtime environment's; sorted by name.
			Env: []kubehtcv1alpha1.EnvVar{{Name: "ATLAS_LOCAL_ROOT_BASE", Value: "/override"}, {Name: "PANDA_JSID", Value: "harvester-1"}},
			// Duplicates dropped; repositories sorted.
			RuntimeEnvironments: []string{"APPS/HEP/ATLAS-SITE", "ENV/PROXY"},
			CVMFS:               []kubehtcv1alpha1.CVMFSMount{{Repository: "atlas-condb.cern.ch"}, {Repository: "atlas.cern.ch"}, {Repository: "sft.cern.ch"}},
			Inputs:              []string{"queuedata.json"}, Outputs: []string{"pilotlog.txt"},
			PriorityClassName: "grid-production", NodeSelector: map[string]string{"kubehtc.io/pool": "cpu"},
			MountCredential: true, PodLabels: map[string]string{"team": "adc"},
		},
	}, {
		name: "cms with the site default limits",
		vo:   "cms",
		// No queue default wall time: the maximum (DefaultLimits, 7 days) applies.
		in:   Description{Queue: "cms-prod", Cores: 4, Image: "my/image:2"},
		want: kubehtcv1alpha1.GridJobDescription{Cores: 4, MemoryMiB: 8000, WallTimeSeconds: 7 * 24 * 3600, Image: "my/image:2"},
	},
		{name: "no queue", vo: "atlas", in: Description{}, wantErr: ErrInvalid, errText: "queue is required"},
		{name: "unknown queue", vo: "atlas", in: Description{Queue: "nope"}, wantErr: ErrInvalid, errText: `unknown queue "nope"`},
		{name: "other VO's queue", vo: "cms", in: Description{Queue: "atlas-prod"}, wantErr: ErrForbidden, errText: `VO "cms" may not submit`},
		{name: "too many cores", vo: "atlas", in: Description{Queue: "atlas-prod", Cores: 1000000}, wantErr: ErrInvalid, errText: "cores 1000000"},
		{name: "negative cores", vo: "atlas", in: Description{Queue: "atlas-prod", Cores: -1}, wantErr: ErrInvalid, errText: "cores -1"},
		{name: "negative wall time", vo: "atlas", in: Description{Queue: "atlas-prod", WallTimeSeconds: -5}, wantErr: ErrInvalid, errText: "wallTimeSeconds -5"},
		{name: "wall time above the queue's", vo: "atlas", in: Description{Queue: "atlas-prod", WallTimeSeconds: 172801}, wantErr: ErrInvalid, errText: "wallTimeSeconds 172801"},
		{name: "absurd memory", vo: "atlas", in: Description{Queue: "atlas-prod", MemoryMiB: 1 << 40}, wantErr: ErrInvalid, errText: "memoryMiB"},
		{name: "negative disk", vo: "atlas", in: Description{Queue: "atlas-prod", DiskMiB: -1}, wantErr: ErrInvalid, errText: "diskMiB -1"},
		{name: "too many GPUs", vo: "atlas", in: Description{Queue: "atlas-prod", GPUs: 100}, wantErr: ErrInvalid, errText: "gpus 100"},
		{name: "unknown RTE", vo: "atlas", in: Description{Queue: "atlas-prod", RuntimeEnvironments: []string{"APPS/HEP/NOPE"}}, wantErr: ErrInvalid, errText: "unknown runtime environment"},
		{name: "bad env name", vo: "atlas", in: Description{Queue: "atlas-prod", Environment: map[string]string{"1X": "y"}}, wantErr: ErrInvalid, errText: "environment variable name"},
		{name: "path in input name", vo: "atlas", in: Description{Queue: "atlas-prod", Inputs: []string{"../etc/passwd"}}, wantErr: ErrInvalid, errText: "input file name"},
		{name: "duplicate output", vo: "atlas", in: Description{Queue: "atlas-prod", Outputs: []string{"a", "a"}}, wantErr: ErrInvalid, errText: "listed twice"},
		{name: "image with space", vo: "atlas", in: Description{Queue: "atlas-prod", Image: "a b"}, wantErr: ErrInvalid, errText: "white space"},
		{name: "oversized argument", vo: "atlas", in: Description{Queue: "atlas-prod", Arguments: []string{strings.Repeat("x", MaxArgLength+1)}}, wantErr: ErrInvalid, errText: "arguments[0]"},
		{name: "too many arguments", vo: "atlas", in: Description{Queue: "atlas-prod", Arguments: make([]string, MaxArgs+1)}, wantErr: ErrInvalid, errText: "arguments, at most"},
		{name: "oversized description", vo: "atlas", in: Description{Queue: "atlas-prod", Arguments: repeat(strings.Repeat("x", MaxArgLength), MaxArgs)}, wantErr: ErrInvalid, errText: "description is"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Translate(s, tc.vo, tc.in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("error %v, want %v containing %q", err, tc.wantErr, tc.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("translation (-want,+got):\n%s", diff)
			}
		})
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// FuzzTranslate checks that whatever a client sends, Translate either refuses it with ErrInvalid or
// ErrForbidden, or produces a description within the queue's limits whose Pod builds and passes
// PodSecurity "restricted".
func FuzzTranslate(f *testing.F) {
	f.Add("atlas-prod", int32(8), int64(16000), int64(7200), int64(5000), int32(0), "", "run.sh", "-a", "K", "v", "APPS/HEP/ATLAS-SITE", "in.txt")
	f.Add("cms-prod", int32(0), int64(0), int64(0), int64(0), int32(1), "img", "", "", "", "", "ENV/PROXY", "")
	f.Add("x", int32(-1), int64(-1), int64(-1), int64(-1), int32(-1), "a b", "\x00", "", "1", "", "nope", "../x")
	s := site(f)
	eval := restrictedEvaluator(f)
	f.Fuzz(func(t *testing.T, queue string, cores int32, mem, wall, disk int64, gpus int32, image, exe, arg, envK, envV, rte, input string) {
		d := Description{Queue: queue, Cores: cores, MemoryMiB: mem, WallTimeSeconds: wall, DiskMiB: disk, GPUs: gpus,
			Image: image, Executable: exe, Arguments: []string{arg}, Environment: map[string]string{envK: envV},
			RuntimeEnvironments: []string{rte}, Inputs: []string{input}}
		for _, vo := range []string{"atlas", "cms"} {
			got, err := Translate(s, vo, d)
			if err != nil {
				if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrForbidden) {
					t.Fatalf("error %v wraps neither ErrInvalid nor ErrForbidden", err)
				}
				continue
			}
			q, _ := s.Queue(queue)
			lim := s.EffectiveLimits(q)
			if got.Cores < 1 || got.Cores > lim.MaxCores || got.MemoryMiB < 1 || got.MemoryMiB > lim.MaxMemoryMiB ||
				got.WallTimeSeconds < 1 || got.WallTimeSeconds > lim.MaxWallTimeSeconds || got.DiskMiB < 0 || got.GPUs < 0 {
				t.Fatalf("accepted out-of-bounds description %+v", got)
			}
			gj := &kubehtcv1alpha1.GridJob{Spec: kubehtcv1alpha1.GridJobSpec{Queue: queue, VO: vo, Description: got, CredentialSecretName: "c"}}
			gj.Name, gj.Namespace = "gj-x", vo
			pod, err := Pod(gj, PodOptions{})
			if err != nil {
				t.Fatalf("Pod of an accepted description: %v", err)
			}
			if msg := checkRestricted(eval, pod); msg != "" {
				t.Fatalf("pod violates PodSecurity restricted: %s", msg)
			}
		}
	})
}
