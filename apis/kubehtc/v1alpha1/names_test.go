package v1alpha1

import "testing"

func TestSiteQueueOf(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		want   string
	}{
		{name: "new key", labels: map[string]string{SiteQueueLabel: "atlas-prod"}, want: "atlas-prod"},
		{name: "written by an older gateway", labels: map[string]string{LegacySiteQueueLabel: "cms-prod"}, want: "cms-prod"},
		{name: "new key wins over the old one", labels: map[string]string{SiteQueueLabel: "atlas-prod", LegacySiteQueueLabel: "old"}, want: "atlas-prod"},
		{name: "none", labels: map[string]string{UserLabel: "u"}, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := SiteQueueOf(tc.labels); got != tc.want {
				t.Errorf("SiteQueueOf(%v) = %q, want %q", tc.labels, got, tc.want)
			}
		})
	}
}
