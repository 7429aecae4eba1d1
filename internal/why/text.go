package why

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteText prints the answer for a person: the verdict first, then the facts behind it.
func (a *Answer) WriteText(w io.Writer, now time.Time) {
	fmt.Fprintf(w, "%s: %s\n", a.Object, a.State)
	if a.Pod != "" && !strings.HasSuffix(a.Object, a.Pod) {
		fmt.Fprintf(w, "  (about its pod %s)\n", a.Pod)
	}
	if v := a.verdict(); v != "" {
		fmt.Fprintf(w, "\nWhy: %s\n", v)
	}
	fmt.Fprintln(w)
	if a.SchedulerReason != "" {
		ago := ""
		if a.SchedulerReasonTime != nil {
			ago = fmt.Sprintf(" (%s ago)", now.Sub(a.SchedulerReasonTime.Time).Round(time.Second))
		}
		fmt.Fprintf(w, "  Scheduler says%s: %s\n", ago, a.SchedulerReason)
	}
	if q := a.Queue; q != nil {
		fmt.Fprintf(w, "  Queue %s: share %s, target %s, using %s core-equivalents (decayed %s); rank %d of %d queues; %d running, %d pending\n",
			q.Name, orDash(q.Share), orDash(q.Target), orDash(q.Usage), orDash(q.DecayedUsage), q.Rank, q.RankOf, q.Running, q.Pending)
		if q.Position > 0 {
			fmt.Fprintf(w, "  Position: %d of %d pending pods in queue %s (by priority, then age)\n", q.Position, q.PendingHere, q.Name)
		}
	} else if a.Pod != "" {
		fmt.Fprintln(w, "  Queue: none (the namespace has no kubehtc.io/queue label; no fair share applies)")
	}
	if g := a.Gang; g != nil {
		fmt.Fprintf(w, "  Gang %s: phase %s, needs %d, %d members exist, %d bound, %d running\n", g.Name, orDash(g.Phase), g.MinMember, g.Members, g.Bound, g.Running)
		if g.LastEvent != "" {
			fmt.Fprintf(w, "    last event: %s\n", g.LastEvent)
		}
	}
	if r := a.Reservation; r != nil {
		fmt.Fprintf(w, "  Reservation: %s\n", r.Message)
	}
	for _, n := range a.Notes {
		fmt.Fprintf(w, "  Note: %s\n", n)
	}
}

// verdict is the one-sentence answer.
func (a *Answer) verdict() string {
	if !a.Waiting {
		return ""
	}
	var parts []string
	if g := a.Gang; g != nil && g.MinMember > 0 && int32(g.Members) < g.MinMember {
		parts = append(parts, fmt.Sprintf("its gang %s has %d of the %d pods it needs; none is scheduled until all exist", g.Name, g.Members, g.MinMember))
	}
	if q := a.Queue; q != nil && q.OverTarget {
		parts = append(parts, fmt.Sprintf("queue %s uses more than its fair share (%s of a target of %s core-equivalents), so queues below theirs go first", q.Name, q.Usage, q.Target))
	}
	if a.SchedulerReason != "" {
		switch {
		case strings.Contains(a.SchedulerReason, "gang"):
			parts = append(parts, "the whole gang does not fit yet: "+a.SchedulerReason)
		case strings.Contains(a.SchedulerReason, "Insufficient") || strings.Contains(a.SchedulerReason, "nodes are available"):
			parts = append(parts, "no node has room for it now: "+a.SchedulerReason)
		default:
			parts = append(parts, a.SchedulerReason)
		}
	}
	if a.Reservation != nil {
		parts = append(parts, "capacity is reserved for it: "+a.Reservation.Message)
	}
	if len(parts) == 0 {
		return "it waits to be scheduled; the scheduler has not reported a reason yet"
	}
	return strings.Join(parts, "; ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
