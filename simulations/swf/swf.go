// Package swf reads the Standard Workload Format of the Parallel Workloads Archive (Feitelson, Tsafrir, Krakov,
// "Experience with using the Parallel Workloads Archive", JPDC 74(10), 2014), plain or gzip-compressed.
//
// Each job is one line of 18 whitespace-separated numbers, -1 meaning unknown; lines starting with ';' are
// header comments. Real logs contain odd lines (zero processors, negative run times, truncated rows): Parse
// skips them and counts each reason, it never fails on a bad line and never panics.
package swf

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Job is one usable job of a log. Times are seconds; fields the log leaves unknown are -1.
type Job struct {
	// ID is field 1.
	ID int64
	// Submit is field 2, seconds from the log's start.
	Submit int64
	// Wait is field 3, the wait the original system gave the job.
	Wait int64
	// RunTime is field 4, at least 1 for a usable job.
	RunTime int64
	// RequestedTime is field 9, the run-time limit the user declared (walltime), or -1.
	RequestedTime int64
	// Processors is the allocated processors (field 5), or the requested ones (field 8) when unknown.
	Processors int64
	// MemoryKB is the requested memory per processor (field 10), else the used memory (field 7), or -1.
	MemoryKB int64
	// Status is field 11: 1 completed, 0 failed, 5 cancelled.
	Status int64
	// User, Group and Queue are fields 12, 13 and 15.
	User, Group, Queue int64
}

// Skip reasons counted by Parse.
const (
	SkipFields     = "wrong number of fields"
	SkipNumber     = "a field is not an integer"
	SkipProcessors = "no processor count"
	SkipRunTime    = "no positive run time"
	SkipSubmit     = "negative submit time"
)

// Log is a parsed SWF file.
type Log struct {
	// Jobs are the usable jobs in submit order (stable for equal submit times).
	Jobs []Job
	// Header holds the header comments as "Key: value" pairs (";" and surrounding spaces removed).
	Header map[string]string
	// Skipped counts skipped lines by reason.
	Skipped map[string]int
	// FirstSkipped is the line number of the first skipped line of each reason, to find it in the file.
	FirstSkipped map[string]int
}

// SkippedTotal is the number of skipped lines.
func (l *Log) SkippedTotal() int {
	n := 0
	for _, c := range l.Skipped {
		n += c
	}
	return n
}

// MaxLineBytes bounds one line; a longer line is an error (the file is not SWF).
const MaxLineBytes = 64 * 1024

// Parse reads an SWF log, gunzipping it when it starts with the gzip magic number. It returns an error only
// when the input cannot be read (or the gzip stream is corrupt); bad job lines are skipped and counted.
func Parse(r io.Reader) (*Log, error) {
	br := bufio.NewReader(r)
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("opening gzip stream: %w", err)
		}
		defer zr.Close()
		br = bufio.NewReader(zr)
	}
	log := &Log{Header: map[string]string{}, Skipped: map[string]int{}, FirstSkipped: map[string]int{}}
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 0, 4096), MaxLineBytes)
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		if text[0] == ';' {
			log.header(string(text[1:]))
			continue
		}
		job, reason := parseJob(string(text))
		if reason != "" {
			if log.Skipped[reason] == 0 {
				log.FirstSkipped[reason] = line
			}
			log.Skipped[reason]++
			continue
		}
		log.Jobs = append(log.Jobs, job)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("line %d: longer than %d bytes: %w", line+1, MaxLineBytes, err)
		}
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	sort.SliceStable(log.Jobs, func(i, j int) bool { return log.Jobs[i].Submit < log.Jobs[j].Submit })
	return log, nil
}

func (l *Log) header(s string) {
	k, v, ok := strings.Cut(s, ":")
	if !ok {
		return
	}
	k = strings.TrimSpace(k)
	if k == "" {
		return
	}
	if _, dup := l.Header[k]; !dup {
		l.Header[k] = strings.TrimSpace(v)
	}
}

// parseJob returns the job of one data line, or why the line is skipped.
func parseJob(s string) (Job, string) {
	fields := strings.Fields(s)
	if len(fields) != 18 {
		return Job{}, SkipFields
	}
	var v [18]int64
	for i, f := range fields {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			// Some logs write fractional averages (field 6, 7); they are not used as integers.
			fl, ferr := strconv.ParseFloat(f, 64)
			if ferr != nil || fl != fl || fl > 1e18 || fl < -1e18 {
				return Job{}, SkipNumber
			}
			n = int64(fl)
		}
		v[i] = n
	}
	j := Job{ID: v[0], Submit: v[1], Wait: v[2], RunTime: v[3], RequestedTime: v[8], Processors: v[4], Status: v[10], User: v[11], Group: v[12], Queue: v[14]}
	if j.RequestedTime <= 0 {
		j.RequestedTime = -1
	}
	if j.Processors <= 0 {
		j.Processors = v[7]
	}
	switch {
	case j.Processors <= 0:
		return Job{}, SkipProcessors
	case j.RunTime <= 0:
		return Job{}, SkipRunTime
	case j.Submit < 0:
		return Job{}, SkipSubmit
	}
	j.MemoryKB = v[9]
	if j.MemoryKB <= 0 {
		j.MemoryKB = v[6]
	}
	if j.MemoryKB <= 0 {
		j.MemoryKB = -1
	}
	return j, ""
}
