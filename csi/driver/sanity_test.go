package driver

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"
)

// TestSanity runs csi-sanity (github.com/kubernetes-csi/csi-test/v5) against the driver with a CVMFS
// volume bind-mounted from the fake node's host root. Ginkgo prints the spec counts at the end
// ("Ran N of M Specs ... Passed | Failed | Pending | Skipped").
func TestSanity(t *testing.T) {
	e := newEnv(t)
	e.start(t)
	cfg := sanity.NewTestConfig()
	cfg.Address = "unix://" + filepath.Join(e.dir, "csi.sock")
	// sanity creates TargetPath and StagingPath with os.Mkdir, then publishes at TargetPath/target.
	if err := os.MkdirAll(filepath.Join(e.cfg.KubeletDir, "pods", "sanity"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.TargetPath = filepath.Join(e.cfg.KubeletDir, "pods", "sanity", "target")
	cfg.StagingPath = filepath.Join(e.cfg.KubeletDir, "staging")
	cfg.TestVolumeParameters = map[string]string{"type": "cvmfs", "repository": "atlas.cern.ch"}
	cfg.IdempotentCount = 2
	sanity.Test(t, cfg)
}
