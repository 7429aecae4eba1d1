package scenario

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// Ranges is a scenario's ranges.yaml: bounds on the metrics of its results. `kubehtc sim --check` fails when a
// metric leaves its range or is missing.
//
//	bounds:
//	  kubehtc/utilization_cpu:
//	    min: 0.6
//	    max: 0.8
//	    source: fast mode on 2026-11-22 measured 0.71; ±0.1 for tie-breaking and plugin changes
type Ranges struct {
	// Bounds by metric key, "<profile>/<metric>" as in results.json.
	Bounds map[string]Bound `json:"bounds"`
}

// Bound is an inclusive range; a missing side is unbounded.
type Bound struct {
	// Min is the lowest acceptable value.
	Min *float64 `json:"min,omitempty"`
	// Max is the highest acceptable value.
	Max *float64 `json:"max,omitempty"`
	// Source says where the bound comes from (a measurement, a paper, an invariant); required.
	Source string `json:"source"`
}

// LoadRanges reads and validates a ranges file.
func LoadRanges(path string) (*Ranges, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading ranges: %w", err)
	}
	r, err := ParseRanges(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// ParseRanges decodes a ranges file strictly and validates it.
func ParseRanges(data []byte) (*Ranges, error) {
	var r Ranges
	if err := yaml.UnmarshalStrict(data, &r); err != nil {
		return nil, fmt.Errorf("parsing ranges: %w", err)
	}
	var errs []error
	if len(r.Bounds) == 0 {
		errs = append(errs, errors.New("bounds: at least one bound is required"))
	}
	for _, k := range slices.Sorted(maps.Keys(r.Bounds)) {
		b := r.Bounds[k]
		f := "bounds[" + k + "]"
		if !strings.Contains(k, "/") {
			errs = append(errs, fmt.Errorf("%s: key must be <profile>/<metric>", f))
		}
		if b.Min == nil && b.Max == nil {
			errs = append(errs, fmt.Errorf("%s: min or max is required", f))
		}
		if b.Min != nil && b.Max != nil && *b.Min > *b.Max {
			errs = append(errs, fmt.Errorf("%s: min %v is above max %v", f, *b.Min, *b.Max))
		}
		if strings.TrimSpace(b.Source) == "" {
			errs = append(errs, fmt.Errorf("%s.source: required (say where the bound comes from)", f))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &r, nil
}

// Check returns one error per bound whose metric is missing from metrics or outside its range.
func (r *Ranges) Check(metrics map[string]float64) []error {
	var out []error
	for _, k := range slices.Sorted(maps.Keys(r.Bounds)) {
		b := r.Bounds[k]
		v, ok := metrics[k]
		switch {
		case !ok:
			out = append(out, fmt.Errorf("%s: not in the results", k))
		case b.Min != nil && v < *b.Min:
			out = append(out, fmt.Errorf("%s = %.4g is below its range [%s] (%s)", k, v, b.String(), b.Source))
		case b.Max != nil && v > *b.Max:
			out = append(out, fmt.Errorf("%s = %.4g is above its range [%s] (%s)", k, v, b.String(), b.Source))
		}
	}
	return out
}

// String renders the range as "min, max" with "-inf"/"+inf" for open sides.
func (b Bound) String() string {
	lo, hi := "-inf", "+inf"
	if b.Min != nil {
		lo = fmt.Sprintf("%g", *b.Min)
	}
	if b.Max != nil {
		hi = fmt.Sprintf("%g", *b.Max)
	}
	return lo + ", " + hi
}
