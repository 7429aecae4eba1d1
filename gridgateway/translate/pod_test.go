package translate

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
)

func restrictedEvaluator(t testing.TB) policy.Evaluator {
	t.Helper()
	e, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// checkRestricted returns why the pod violates PodSecurity "restricted" (latest), or "".
func checkRestricted(e policy.Evaluator, pod *corev1.Pod) string {
	res := policy.AggregateCheckResults(e.EvaluatePod(psapi.LevelVersion{Level: psapi.LevelRestricted, Version: psapi.LatestVersion()}, &pod.ObjectMeta, &pod.Spec))
	if res.Allowed {
		return ""
	}
	return res.ForbiddenReason() + ": " + res.ForbiddenDetail()
}

func pilot(mutate func(*kubehtcv1alpha1.GridJob)) *kubehtcv1alpha1.GridJob {
	gj := &kubehtcv1alpha1.GridJob{
		ObjectMeta: metav1.ObjectMeta{Name: "gj-abc", Namespace: "atlas"},
		Spec: kubehtcv1alpha1.GridJobSpec{
			Owner: kubehtcv1alpha1.GridJobOwner{Issuer: "https://iss/", Subject: "pilot-factory"},
			VO:    "atlas", Queue: "atlas-prod",
			Description: kubehtcv1alpha1.GridJobDescription{Cores: 8, MemoryMiB: 16000, WallTimeSeconds: 3600, Image: "pilot:1"},
		},
	}
	if mutate != nil {
		mutate(gj)
	}
	return gj
}

func TestPod(t *testing.T) {
	eval := restrictedEvaluator(t)
	cases := []struct {
		name  string
		gj    *kubehtcv1alpha1.GridJob
		opts  PodOptions
		check func(t *testing.T, pod *corev1.Pod)
	}{{
		name: "resources, deadline and labels",
		gj:   pilot(nil),
		opts: PodOptions{SchedulerName: "kubehtc"},
		check: func(t *testing.T, pod *corev1.Pod) {
			want := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourceMemory: resource.MustParse("16000Mi")}
			c := pod.Spec.Containers[0]
			if diff := cmp.Diff(want, c.Resources.Requests); diff != "" {
				t.Errorf("requests (-want,+got):\n%s", diff)
			}
			if diff := cmp.Diff(want, c.Resources.Limits); diff != "" {
				t.Errorf("limits (-want,+got):\n%s", diff)
			}
			// 3600 s of wall time plus the 60 s margin.
			if got := ptr.Deref(pod.Spec.ActiveDeadlineSeconds, 0); got != 3660 {
				t.Errorf("activeDeadlineSeconds %d, want 3660", got)
			}
			wantLabels := map[string]string{QueueLabel: "atlas-prod", UserLabel: "pilot-factory", ClassLabel: "batch", GridJobLabel: "gj-abc"}
			if diff := cmp.Diff(wantLabels, pod.Labels); diff != "" {
				t.Errorf("labels (-want,+got):\n%s", diff)
			}
			if pod.Name != "gj-abc" || pod.Namespace != "atlas" || pod.Spec.SchedulerName != "kubehtc" || pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
				t.Errorf("pod %s/%s scheduler %q restart %s", pod.Namespace, pod.Name, pod.Spec.SchedulerName, pod.Spec.RestartPolicy)
			}
		},
	}, {
		name: "disk, GPUs, proxy, inputs",
		gj: pilot(func(gj *kubehtcv1alpha1.GridJob) {
			d := &gj.Spec.Description
			d.DiskMiB, d.GPUs, d.MountCredential, d.Inputs = 5000, 2, true, []string{"in.dat"}
			gj.Spec.CredentialSecretName, gj.Spec.CredentialType = "gj-abc-credential", kubehtcv1alpha1.CredentialX509Proxy
		}),
		check: func(t *testing.T, pod *corev1.Pod) {
			c := pod.Spec.Containers[0]
			if q := c.Resources.Limits[corev1.ResourceEphemeralStorage]; q.Cmp(resource.MustParse("5000Mi")) != 0 {
				t.Errorf("ephemeral-storage limit %s, want 5000Mi", q.String())
			}
			if q := c.Resources.Limits["nvidia.com/gpu"]; q.Value() != 2 {
				t.Errorf("GPU limit %s, want 2", q.String())
			}
			if env := envOf(c, "X509_USER_PROXY"); env != CredentialDir+"/credential" {
				t.Errorf("X509_USER_PROXY %q", env)
			}
			mounts := map[string]corev1.VolumeMount{}
			for _, m := range c.VolumeMounts {
				mounts[m.Name] = m
			}
			if m := mounts["credential"]; !m.ReadOnly || m.MountPath != CredentialDir {
				t.Errorf("credential mount %+v, want read-only at %s", m, CredentialDir)
			}
			if m := mounts["inputs"]; !m.ReadOnly || m.MountPath != InputsDir {
				t.Errorf("inputs mount %+v", m)
			}
		},
	}, {
		name: "bearer token",
		gj: pilot(func(gj *kubehtcv1alpha1.GridJob) {
			gj.Spec.Description.MountCredential = true
			gj.Spec.CredentialSecretName, gj.Spec.CredentialType = "s", kubehtcv1alpha1.CredentialBearerToken
		}),
		check: func(t *testing.T, pod *corev1.Pod) {
			if env := envOf(pod.Spec.Containers[0], "BEARER_TOKEN_FILE"); env != CredentialDir+"/credential" {
				t.Errorf("BEARER_TOKEN_FILE %q", env)
			}
			if env := envOf(pod.Spec.Containers[0], "X509_USER_PROXY"); env != "" {
				t.Errorf("X509_USER_PROXY set for a token: %q", env)
			}
		},
	}, {
		name: "CVMFS inline volumes",
		gj: pilot(func(gj *kubehtcv1alpha1.GridJob) {
			gj.Spec.Description.CVMFS = []kubehtcv1alpha1.CVMFSMount{{Repository: "atlas.cern.ch"}, {Repository: "sft.cern.ch"}}
		}),
		check: func(t *testing.T, pod *corev1.Pod) {
			got := map[string]string{}
			for _, v := range pod.Spec.Volumes {
				if v.CSI != nil {
					if !ptr.Deref(v.CSI.ReadOnly, false) {
						t.Errorf("CVMFS volume %s is not read-only", v.Name)
					}
					got[v.CSI.VolumeAttributes["repository"]] = v.CSI.Driver
				}
			}
			if diff := cmp.Diff(map[string]string{"atlas.cern.ch": "cvmfs.csi.cern.ch", "sft.cern.ch": "cvmfs.csi.cern.ch"}, got); diff != "" {
				t.Errorf("CSI volumes (-want,+got):\n%s", diff)
			}
			if !hasMount(pod.Spec.Containers[0], "/cvmfs/atlas.cern.ch") {
				t.Errorf("no mount at /cvmfs/atlas.cern.ch: %+v", pod.Spec.Containers[0].VolumeMounts)
			}
		},
	}, {
		name: "CVMFS PVCs",
		gj: pilot(func(gj *kubehtcv1alpha1.GridJob) {
			gj.Spec.Description.CVMFS = []kubehtcv1alpha1.CVMFSMount{{Repository: "atlas.cern.ch"}}
		}),
		opts: PodOptions{CVMFSMode: CVMFSPVC},
		check: func(t *testing.T, pod *corev1.Pod) {
			var claims []string
			for _, v := range pod.Spec.Volumes {
				if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ReadOnly {
					claims = append(claims, v.PersistentVolumeClaim.ClaimName)
				}
			}
			if diff := cmp.Diff([]string{"csi-cvmfs-atlas-cern-ch-pvc"}, claims); diff != "" {
				t.Errorf("read-only claims (-want,+got):\n%s", diff)
			}
			if !hasMount(pod.Spec.Containers[0], "/cvmfs/atlas.cern.ch") {
				t.Errorf("no mount at /cvmfs/atlas.cern.ch")
			}
		},
	}, {
		name: "simulation annotations",
		gj: pilot(func(gj *kubehtcv1alpha1.GridJob) {
			gj.Spec.Description.Env = []kubehtcv1alpha1.EnvVar{{Name: SimRuntimeEnv, Value: "2s"}, {Name: SimExitCodeEnv, Value: "3"}}
		}),
		opts: PodOptions{Simulation: true},
		check: func(t *testing.T, pod *corev1.Pod) {
			want := map[string]string{"sim.kubehtc.io/runtime": "2s", "sim.kubehtc.io/exit-code": "3"}
			if diff := cmp.Diff(want, pod.Annotations); diff != "" {
				t.Errorf("annotations (-want,+got):\n%s", diff)
			}
		},
	}, {
		name: "queue pod labels never override kubehtc's",
		gj: pilot(func(gj *kubehtcv1alpha1.GridJob) {
			gj.Spec.Description.PodLabels = map[string]string{"team": "adc", ClassLabel: "service"}
		}),
		check: func(t *testing.T, pod *corev1.Pod) {
			if pod.Labels["team"] != "adc" || pod.Labels[ClassLabel] != "batch" {
				t.Errorf("labels %v: want team=adc and class batch", pod.Labels)
			}
		},
	}, {
		name: "DN owner label",
		gj: pilot(func(gj *kubehtcv1alpha1.GridJob) {
			gj.Spec.Owner = kubehtcv1alpha1.GridJobOwner{DN: "/DC=ch/DC=cern/OU=cms/CN=Pilot Factory User"}
		}),
		check: func(t *testing.T, pod *corev1.Pod) {
			if got := pod.Labels[UserLabel]; len(got) > 63 || got[:18] != "Pilot-Factory-User" {
				t.Errorf("user label %q", got)
			}
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod, err := Pod(tc.gj, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, pod)
			if msg := checkRestricted(eval, pod); msg != "" {
				t.Errorf("PodSecurity restricted: %s", msg)
			}
		})
	}
}

// TestRestrictedCheckCanFail makes sure the PodSecurity check used above rejects a pod that is not restricted.
func TestRestrictedCheckCanFail(t *testing.T) {
	pod, err := Pod(pilot(nil), PodOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptr.To(true)
	if checkRestricted(restrictedEvaluator(t), pod) == "" {
		t.Fatal("a container allowing privilege escalation passed the restricted check")
	}
}

func envOf(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func hasMount(c corev1.Container, path string) bool {
	for _, m := range c.VolumeMounts {
		if m.MountPath == path && m.ReadOnly {
			return true
		}
	}
	return false
}
