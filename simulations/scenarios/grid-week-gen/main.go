// Command grid-week-gen writes simulations/scenarios/grid-week.yaml: a week of a grid site's demand, made of
// bursts of single-core analysis jobs and 8-core pilots from 24 VOs with very unequal fair-share weights.
// The output is deterministic (fixed seed); regenerate with
//
//	go run ./simulations/scenarios/grid-week-gen > simulations/scenarios/grid-week.yaml
//
// and the package's test fails when the checked-in file differs from what this program writes.
//
// How the week is made. Capacity is 2,048 cores (344,064 core-hours in 168 h). Each VO asks for its weight's
// fraction of capacity times a demand factor drawn in [0.3, 3] (some VOs ask for less than their share, some
// for far more), scaled so the VOs together ask for DemandFactor × capacity. A VO's demand comes in bursts
// inside its active periods: the big four are active all week; the others are "steady", "early" (the first
// days only), "late" (idle for days, then arriving) or "returning" (a first day, days idle, then back). A burst
// is one generator entry: jobs of one class arriving at exponential gaps over 1–8 hours. Analysis bursts pick
// a mean runtime of 15 min – 8 h, pilots 6–13 h, each spread ±80 % (so 3 min to 23.4 h); walltimes are
// declared above the longest runtime, as users and pilot factories do (analysis: twice the longest, rounded up
// to the hour; pilots: 48 h).
package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"time"
)

// Parameters of the week.
const (
	seed         = 20261206
	week         = 168 * time.Hour
	demandFactor = 1.5
	jitter       = 0.8
	// pilotCores and analysis cores are the two shapes.
	pilotCores = 8
)

// pools are the cluster: 48 × 32 cores and 8 × 64 cores, 4 GiB per core.
var pools = []struct {
	name       string
	count, cpu int
}{{"cpu-a", 48, 32}, {"cpu-b", 8, 64}}

// vos are the VOs and their fair-share weights: the LHC experiments dominate, a long tail of small VOs.
var vos = []struct {
	name   string
	weight int
}{
	{"atlas", 300}, {"cms", 250}, {"lhcb", 120}, {"alice", 100}, {"belle", 60}, {"dune", 40}, {"lsst", 30},
	{"icecube", 25}, {"ligo", 20}, {"virgo", 15}, {"km3net", 12}, {"cta", 10}, {"t2k", 8}, {"hyperk", 6},
	{"na62", 5}, {"compass", 4}, {"auger", 3}, {"biomed", 3}, {"enmr", 2}, {"pheno", 2}, {"ilc", 1},
	{"calice", 1}, {"snoplus", 1}, {"fermilab", 1},
}

var (
	analysisMeans = []time.Duration{15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour}
	pilotMeans    = []time.Duration{6 * time.Hour, 10 * time.Hour, 13 * time.Hour}
)

// burst is one generator entry.
type burst struct {
	vo, class string
	count     int
	start     time.Duration
	every     time.Duration
	runtime   time.Duration
	walltime  time.Duration
}

func (b burst) cores() int {
	if b.class == "pilot" {
		return pilotCores
	}
	return 1
}

func (b burst) coreHours() float64 { return float64(b.count*b.cores()) * b.runtime.Hours() }

// period is an active interval of a VO.
type period struct{ from, to time.Duration }

func main() {
	flag.Parse()
	if err := write(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func capacityCores() int {
	n := 0
	for _, p := range pools {
		n += p.count * p.cpu
	}
	return n
}

// activity returns a VO's kind and active periods.
func activity(rng *rand.Rand, i int) (string, []period) {
	day := 24 * time.Hour
	kinds := []string{"steady", "early", "late", "returning", "returning"}
	kind := "steady"
	if i >= 4 {
		kind = kinds[rng.IntN(len(kinds))]
	}
	switch kind {
	case "early":
		return kind, []period{{0, time.Duration(2+rng.IntN(2)) * day}}
	case "late":
		return kind, []period{{time.Duration(3+rng.IntN(2)) * day, week}}
	case "returning":
		back := time.Duration(4+rng.IntN(2)) * day
		return kind, []period{{0, day + time.Duration(rng.IntN(12))*time.Hour}, {back, week}}
	}
	return kind, []period{{0, week}}
}

// bursts makes a VO's bursts so that they ask for about demand core-hours.
func bursts(rng *rand.Rand, vo string, demand, pilotFraction float64, periods []period) []burst {
	var active time.Duration
	for _, p := range periods {
		active += p.to - p.from
	}
	var out []burst
	for _, class := range []string{"pilot", "analysis"} {
		share := pilotFraction
		if class == "analysis" {
			share = 1 - pilotFraction
		}
		budget := demand * share
		if budget <= 0 {
			continue
		}
		// About one burst per 12 active hours, at least two.
		n := max(2, int(active.Hours()/12))
		weights := make([]float64, n)
		total := 0.0
		for k := range weights {
			weights[k] = math.Exp(rng.NormFloat64() * 0.7) // lognormal burst sizes
			total += weights[k]
		}
		for k := range n {
			// The burst starts at a uniform point of the active time.
			at := time.Duration(rng.Float64() * float64(active))
			start := periods[0].from
			for _, p := range periods {
				if at < p.to-p.from {
					start = p.from + at
					break
				}
				at -= p.to - p.from
			}
			start = start.Round(time.Minute)
			length := time.Duration(1+rng.IntN(8)) * time.Hour
			b := burst{vo: vo, class: class, start: start}
			if class == "pilot" {
				b.runtime = pilotMeans[rng.IntN(len(pilotMeans))]
				b.walltime = 48 * time.Hour
			} else {
				b.runtime = analysisMeans[rng.IntN(len(analysisMeans))]
				b.walltime = time.Duration(math.Ceil(2*(1+jitter)*b.runtime.Hours())) * time.Hour
			}
			b.count = max(1, int(math.Round(budget*weights[k]/total/(float64(b.cores())*b.runtime.Hours()))))
			b.every = (length / time.Duration(b.count)).Round(time.Second)
			out = append(out, b)
		}
	}
	return out
}

func write(w io.Writer) error {
	rng := rand.New(rand.NewPCG(seed, 0x9e1d))
	capacityHours := float64(capacityCores()) * week.Hours()
	totalWeight := 0
	for _, v := range vos {
		totalWeight += v.weight
	}
	factors := make([]float64, len(vos))
	asked := 0.0
	for i, v := range vos {
		factors[i] = 0.3 + 2.7*rng.Float64()
		asked += float64(v.weight) / float64(totalWeight) * factors[i]
	}
	var all []burst
	kinds := map[string]string{}
	for i, v := range vos {
		demand := float64(v.weight) / float64(totalWeight) * factors[i] / asked * demandFactor * capacityHours
		pilotFraction := 0.3 + 0.5*rng.Float64()
		if i < 4 {
			pilotFraction = 0.85 // the LHC experiments run mostly pilots
		}
		kind, periods := activity(rng, i)
		kinds[v.name] = kind
		all = append(all, bursts(rng, v.name, demand, pilotFraction, periods)...)
	}
	jobs, coreHours := 0, 0.0
	for _, b := range all {
		jobs += b.count
		coreHours += b.coreHours()
	}
	var sb strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&sb, format, args...) }
	p("# Generated by `go run ./simulations/scenarios/grid-week-gen` (seed %d): do not edit.\n", seed)
	p("# A grid site's week: %d jobs from %d VOs in %d bursts of single-core analysis jobs and 8-core pilots,\n", jobs, len(vos), len(all))
	p("# asking for %.0f core-hours against %.0f available (%.2f x capacity). VO activity:", coreHours, capacityHours, coreHours/capacityHours)
	for i, v := range vos {
		if i%6 == 0 {
			p("\n#  ")
		}
		p(" %s=%s", v.name, kinds[v.name])
	}
	p("\n")
	p("name: grid-week\n")
	p("description: A grid site's week — %d jobs from %d VOs (weights 300 to 1), bursty, %.2f x capacity; 2,048 cores, 168 h.\n", jobs, len(vos), coreHours/capacityHours)
	p("duration: 168h\n")
	p("compression: 3600\n")
	p("cluster:\n  pools:\n")
	for _, pl := range pools {
		p("  - {name: %s, count: %d, cpu: \"%d\", memory: %dGi}\n", pl.name, pl.count, pl.cpu, 4*pl.cpu)
	}
	p("queues:\n")
	for _, v := range vos {
		p("- {name: %s, share: %d}\n", v.name, v.weight)
	}
	p("workloads:\n")
	for _, b := range all {
		mem := "2Gi"
		if b.class == "pilot" {
			mem = "16Gi"
		}
		p("- generate: {class: %s, queue: %s, count: %d, start: %s, every: %s, cpu: \"%d\", memory: %s, runtime: %s, runtimeJitter: %g, walltime: %s}\n",
			b.class, b.vo, b.count, b.start, b.every, b.cores(), mem, b.runtime, jitter, b.walltime)
	}
	_, err := io.WriteString(w, sb.String())
	return err
}
