package apel

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Message headers of the APEL formats this package writes (apel/db/records/job.py, summary.py; the
// message format v0.3).
const (
	IndividualHeader = "APEL-individual-job-message: v0.3"
	SummaryHeader    = "APEL-summary-job-message: v0.3"
	recordSeparator  = "%%"
)

// ServiceLevelHEPscore23 is the ServiceLevelType of records normalised with HEPscore23 (WLCG's benchmark
// since 2023; APEL accepts si2k, HEPSPEC and HEPscore23).
const ServiceLevelHEPscore23 = "HEPscore23"

// Record is one APEL individual job record. Durations are seconds, times the Unix epoch, memory KiB.
type Record struct {
	Site, SubmitHost, MachineName, Queue string
	LocalJobID, LocalUserID              string
	GlobalUserName, FQAN, VO             string
	WallDuration, CPUDuration            int64
	Processors, NodeCount                int64
	StartTime, EndTime                   int64
	InfrastructureDescription            string
	InfrastructureType                   string
	MemoryReal, MemoryVirtual            int64
	// ServiceLevelType and ServiceLevel come together or not at all (APEL refuses one without the other);
	// ServiceLevel is the benchmark per core of the node the job ran on.
	ServiceLevelType string
	ServiceLevel     float64
}

// fields returns the record's lines in APEL's order (JobRecord._msg_fields), empty optional fields left out.
func (r *Record) fields() [][2]string {
	var out [][2]string
	str := func(k, v string) {
		if v != "" {
			out = append(out, [2]string{k, v})
		}
	}
	num := func(k string, v int64, always bool) {
		if always || v > 0 {
			out = append(out, [2]string{k, strconv.FormatInt(v, 10)})
		}
	}
	str("Site", r.Site)
	str("SubmitHost", r.SubmitHost)
	str("MachineName", r.MachineName)
	str("Queue", r.Queue)
	str("LocalJobId", r.LocalJobID)
	str("LocalUserId", r.LocalUserID)
	str("GlobalUserName", r.GlobalUserName)
	str("FQAN", r.FQAN)
	str("VO", r.VO)
	num("WallDuration", r.WallDuration, true)
	num("CpuDuration", r.CPUDuration, true)
	num("Processors", r.Processors, false)
	num("NodeCount", r.NodeCount, false)
	num("StartTime", r.StartTime, true)
	num("EndTime", r.EndTime, true)
	str("InfrastructureDescription", r.InfrastructureDescription)
	str("InfrastructureType", r.InfrastructureType)
	num("MemoryReal", r.MemoryReal, false)
	num("MemoryVirtual", r.MemoryVirtual, false)
	if r.ServiceLevelType != "" {
		str("ServiceLevelType", r.ServiceLevelType)
		str("ServiceLevel", strconv.FormatFloat(r.ServiceLevel, 'f', -1, 64))
	}
	return out
}

// Validate checks what APEL's loader checks: the mandatory fields, StartTime ≤ EndTime, a ServiceLevel with
// its type.
func (r *Record) Validate() error {
	switch {
	case r.Site == "":
		return fmt.Errorf("record %s: Site is empty", r.LocalJobID)
	case r.LocalJobID == "":
		return fmt.Errorf("record: LocalJobId is empty")
	case r.StartTime <= 0 || r.EndTime <= 0:
		return fmt.Errorf("record %s: StartTime %d and EndTime %d must be set", r.LocalJobID, r.StartTime, r.EndTime)
	case r.EndTime < r.StartTime:
		return fmt.Errorf("record %s: EndTime %d is before StartTime %d", r.LocalJobID, r.EndTime, r.StartTime)
	case r.WallDuration < 0 || r.CPUDuration < 0:
		return fmt.Errorf("record %s: negative WallDuration or CpuDuration", r.LocalJobID)
	case r.ServiceLevelType != "" && r.ServiceLevel <= 0:
		return fmt.Errorf("record %s: ServiceLevelType %s without a positive ServiceLevel", r.LocalJobID, r.ServiceLevelType)
	}
	for _, f := range r.fields() {
		if strings.ContainsAny(f[1], "\r\n") {
			return fmt.Errorf("record %s: field %s contains a line break", r.LocalJobID, f[0])
		}
	}
	return nil
}

// WriteTo writes the record's lines and the separator.
func (r *Record) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	for _, f := range r.fields() {
		b.WriteString(f[0])
		b.WriteString(": ")
		b.WriteString(f[1])
		b.WriteByte('\n')
	}
	b.WriteString(recordSeparator + "\n")
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// IndividualMessage is an APEL individual job message holding the records.
func IndividualMessage(records []Record) []byte {
	var b strings.Builder
	b.WriteString(IndividualHeader + "\n")
	for i := range records {
		records[i].WriteTo(&b)
	}
	return []byte(b.String())
}

// ParseRecords reads the records of an individual job message (with or without its header) or of
// concatenated record blocks, as this package writes them.
func ParseRecords(r io.Reader) ([]Record, error) {
	var out []Record
	cur := map[string]string{}
	flush := func() error {
		if len(cur) == 0 {
			return nil
		}
		rec, err := recordFromFields(cur)
		if err != nil {
			return err
		}
		out = append(out, rec)
		cur = map[string]string{}
		return nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "APEL-"):
			continue
		case line == recordSeparator:
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("line %q is not \"Key: value\"", line)
		}
		cur[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, flush()
}

func recordFromFields(f map[string]string) (Record, error) {
	var err error
	num := func(k string) int64 {
		if f[k] == "" || err != nil {
			return 0
		}
		var v int64
		v, err = strconv.ParseInt(f[k], 10, 64)
		if err != nil {
			err = fmt.Errorf("field %s: %w", k, err)
		}
		return v
	}
	r := Record{
		Site: f["Site"], SubmitHost: f["SubmitHost"], MachineName: f["MachineName"], Queue: f["Queue"],
		LocalJobID: f["LocalJobId"], LocalUserID: f["LocalUserId"], GlobalUserName: f["GlobalUserName"],
		FQAN: f["FQAN"], VO: f["VO"], WallDuration: num("WallDuration"), CPUDuration: num("CpuDuration"),
		Processors: num("Processors"), NodeCount: num("NodeCount"), StartTime: num("StartTime"), EndTime: num("EndTime"),
		InfrastructureDescription: f["InfrastructureDescription"], InfrastructureType: f["InfrastructureType"],
		MemoryReal: num("MemoryReal"), MemoryVirtual: num("MemoryVirtual"), ServiceLevelType: f["ServiceLevelType"],
	}
	if s := f["ServiceLevel"]; s != "" && err == nil {
		r.ServiceLevel, err = strconv.ParseFloat(s, 64)
	}
	return r, err
}

// SplitFQAN returns the VOGroup and VORole of an FQAN the way APEL's parse_fqan does:
// "/atlas/usatlas/Role=production/Capability=NULL" → "/atlas/usatlas", "Role=production".
func SplitFQAN(fqan string) (group, role string) {
	if fqan == "" {
		return "", ""
	}
	var groups []string
	for _, p := range strings.Split(strings.Trim(fqan, "/"), "/") {
		switch {
		case strings.HasPrefix(p, "Role="):
			role = p
		case strings.HasPrefix(p, "Capability="):
		default:
			groups = append(groups, p)
		}
	}
	return "/" + strings.Join(groups, "/"), role
}

// Summary is one APEL summary record: the jobs of one month that share the key fields.
type Summary struct {
	Site                           string
	Month, Year                    int
	GlobalUserName, VO             string
	VOGroup, VORole                string
	SubmitHost, InfrastructureType string
	ServiceLevelType               string
	ServiceLevel                   float64
	NodeCount, Processors          int64
	EarliestEndTime, LatestEndTime int64
	WallDuration, CPUDuration      int64
	NumberOfJobs                   int64
}

// Summarise groups records by month (of EndTime, UTC) and by the key fields of APEL's SummaryRecord, in a
// stable order.
func Summarise(records []Record) []Summary {
	type key struct {
		site                  string
		year, month           int
		user, vo, group, role string
		submit, infra, slt    string
		sl                    float64
		nodes, procs          int64
	}
	sums := map[key]*Summary{}
	for _, r := range records {
		end := time.Unix(r.EndTime, 0).UTC()
		group, role := SplitFQAN(r.FQAN)
		k := key{r.Site, end.Year(), int(end.Month()), r.GlobalUserName, r.VO, group, role, r.SubmitHost,
			r.InfrastructureType, r.ServiceLevelType, r.ServiceLevel, r.NodeCount, r.Processors}
		s := sums[k]
		if s == nil {
			s = &Summary{Site: r.Site, Year: k.year, Month: k.month, GlobalUserName: r.GlobalUserName, VO: r.VO,
				VOGroup: group, VORole: role, SubmitHost: r.SubmitHost, InfrastructureType: r.InfrastructureType,
				ServiceLevelType: r.ServiceLevelType, ServiceLevel: r.ServiceLevel, NodeCount: r.NodeCount,
				Processors: r.Processors, EarliestEndTime: r.EndTime, LatestEndTime: r.EndTime}
			sums[k] = s
		}
		s.EarliestEndTime = min(s.EarliestEndTime, r.EndTime)
		s.LatestEndTime = max(s.LatestEndTime, r.EndTime)
		s.WallDuration += r.WallDuration
		s.CPUDuration += r.CPUDuration
		s.NumberOfJobs++
	}
	out := make([]Summary, 0, len(sums))
	for _, s := range sums {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Year != b.Year || a.Month != b.Month {
			return a.Year < b.Year || a.Year == b.Year && a.Month < b.Month
		}
		if a.VO != b.VO {
			return a.VO < b.VO
		}
		if a.GlobalUserName != b.GlobalUserName {
			return a.GlobalUserName < b.GlobalUserName
		}
		if a.Processors != b.Processors {
			return a.Processors < b.Processors
		}
		return fmt.Sprint(a) < fmt.Sprint(b)
	})
	return out
}

// SummaryMessage is an APEL summary job message of the summaries (SummaryRecord._msg_fields order).
func SummaryMessage(sums []Summary) []byte {
	var b strings.Builder
	b.WriteString(SummaryHeader + "\n")
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	for _, s := range sums {
		line("Site", s.Site)
		line("Month", strconv.Itoa(s.Month))
		line("Year", strconv.Itoa(s.Year))
		line("GlobalUserName", s.GlobalUserName)
		line("VO", s.VO)
		line("VOGroup", s.VOGroup)
		line("VORole", s.VORole)
		line("SubmitHost", s.SubmitHost)
		line("InfrastructureType", s.InfrastructureType)
		if s.ServiceLevelType != "" {
			line("ServiceLevelType", s.ServiceLevelType)
			line("ServiceLevel", strconv.FormatFloat(s.ServiceLevel, 'f', -1, 64))
		}
		if s.NodeCount > 0 {
			line("NodeCount", strconv.FormatInt(s.NodeCount, 10))
		}
		if s.Processors > 0 {
			line("Processors", strconv.FormatInt(s.Processors, 10))
		}
		line("EarliestEndTime", strconv.FormatInt(s.EarliestEndTime, 10))
		line("LatestEndTime", strconv.FormatInt(s.LatestEndTime, 10))
		line("WallDuration", strconv.FormatInt(s.WallDuration, 10))
		line("CpuDuration", strconv.FormatInt(s.CPUDuration, 10))
		line("NumberOfJobs", strconv.FormatInt(s.NumberOfJobs, 10))
		b.WriteString(recordSeparator + "\n")
	}
	return []byte(b.String())
}
