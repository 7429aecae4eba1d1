package arcrest

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// xrslValue is a value of an xRSL relation: a string literal or a parenthesised sequence of values.
type xrslValue struct {
	str  string
	list []xrslValue
	seq  bool
}

// xrslRelation is one (attribute op values) of a conjunction.
type xrslRelation struct {
	attr   string
	op     string
	values []xrslValue
}

type xrslParser struct {
	s   string
	pos int
}

// maxXRSLDepth bounds nesting, so that a hostile body cannot exhaust the stack.
const maxXRSLDepth = 16

// splitXRSL parses an xRSL body: one conjunction "&(a=b)..." or a multi-job "+(&...)(&...)".
func splitXRSL(body string) ([][]xrslRelation, error) {
	p := &xrslParser{s: body}
	p.skip()
	if p.eat('+') {
		var jobs [][]xrslRelation
		for {
			p.skip()
			if p.pos >= len(p.s) {
				break
			}
			if !p.eat('(') {
				return nil, p.errorf("expected '(' before a job of a multi-job description")
			}
			p.skip()
			rels, err := p.conjunction()
			if err != nil {
				return nil, err
			}
			p.skip()
			if !p.eat(')') {
				return nil, p.errorf("expected ')' after a job of a multi-job description")
			}
			jobs = append(jobs, rels)
		}
		if len(jobs) == 0 {
			return nil, descError("xRSL: multi-job description with no job")
		}
		return jobs, nil
	}
	rels, err := p.conjunction()
	if err != nil {
		return nil, err
	}
	p.skip()
	if p.pos < len(p.s) {
		return nil, p.errorf("unexpected text after the description")
	}
	return [][]xrslRelation{rels}, nil
}

func (p *xrslParser) errorf(format string, args ...any) error {
	return descError("xRSL at byte %d: %s", p.pos, fmt.Sprintf(format, args...))
}

// skip passes white space and (* comments *).
func (p *xrslParser) skip() {
	for p.pos < len(p.s) {
		switch {
		case unicode.IsSpace(rune(p.s[p.pos])):
			p.pos++
		case strings.HasPrefix(p.s[p.pos:], "(*"):
			end := strings.Index(p.s[p.pos+2:], "*)")
			if end < 0 {
				p.pos = len(p.s)
				return
			}
			p.pos += end + 4
		default:
			return
		}
	}
}

func (p *xrslParser) eat(c byte) bool {
	if p.pos < len(p.s) && p.s[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

func (p *xrslParser) conjunction() ([]xrslRelation, error) {
	if !p.eat('&') {
		return nil, p.errorf("a description starts with '&' (or '+' for several jobs)")
	}
	var rels []xrslRelation
	for {
		p.skip()
		if p.pos >= len(p.s) || p.s[p.pos] != '(' || strings.HasPrefix(p.s[p.pos:], "(&") {
			break
		}
		p.pos++
		r, err := p.relation()
		if err != nil {
			return nil, err
		}
		rels = append(rels, r)
	}
	if len(rels) == 0 {
		return nil, p.errorf("no relation after '&'")
	}
	return rels, nil
}

func (p *xrslParser) relation() (xrslRelation, error) {
	var r xrslRelation
	p.skip()
	start := p.pos
	for p.pos < len(p.s) && (isWordByte(p.s[p.pos]) && !strings.ContainsRune("=!<>", rune(p.s[p.pos]))) {
		p.pos++
	}
	r.attr = strings.ToLower(p.s[start:p.pos])
	if r.attr == "" {
		return r, p.errorf("expected an attribute name")
	}
	p.skip()
	for _, op := range []string{"!=", "<=", ">=", "=", "<", ">"} {
		if strings.HasPrefix(p.s[p.pos:], op) {
			r.op = op
			p.pos += len(op)
			break
		}
	}
	if r.op == "" {
		return r, p.errorf("expected an operator after %q", r.attr)
	}
	vals, err := p.values(0)
	if err != nil {
		return r, err
	}
	if !p.eat(')') {
		return r, p.errorf("expected ')' to close relation %q", r.attr)
	}
	r.values = vals
	return r, nil
}

// values reads values up to (not including) the closing ')'.
func (p *xrslParser) values(depth int) ([]xrslValue, error) {
	if depth > maxXRSLDepth {
		return nil, p.errorf("values nested deeper than %d", maxXRSLDepth)
	}
	var out []xrslValue
	for {
		p.skip()
		if p.pos >= len(p.s) {
			return nil, p.errorf("unexpected end of the description")
		}
		switch c := p.s[p.pos]; {
		case c == ')':
			return out, nil
		case c == '(':
			p.pos++
			list, err := p.values(depth + 1)
			if err != nil {
				return nil, err
			}
			p.pos++ // ')'
			out = append(out, xrslValue{list: list, seq: true})
		case c == '#':
			// Concatenation: glue the next literal to the previous one.
			p.pos++
			p.skip()
			v, err := p.literal()
			if err != nil {
				return nil, err
			}
			if len(out) == 0 || out[len(out)-1].seq {
				return nil, p.errorf("'#' must join two literals")
			}
			out[len(out)-1].str += v
		default:
			v, err := p.literal()
			if err != nil {
				return nil, err
			}
			out = append(out, xrslValue{str: v})
		}
	}
}

// literal reads "quoted" ("" is a quote), 'quoted', ^Xvalue X (any delimiter X) or a bare word.
func (p *xrslParser) literal() (string, error) {
	if p.pos >= len(p.s) {
		return "", p.errorf("expected a value")
	}
	switch q := p.s[p.pos]; q {
	case '"', '\'':
		p.pos++
		var b strings.Builder
		for p.pos < len(p.s) {
			c := p.s[p.pos]
			p.pos++
			if c == q {
				if p.pos < len(p.s) && p.s[p.pos] == q {
					b.WriteByte(q)
					p.pos++
					continue
				}
				return b.String(), nil
			}
			b.WriteByte(c)
		}
		return "", p.errorf("unterminated quoted value")
	case '^':
		if p.pos+1 >= len(p.s) {
			return "", p.errorf("unterminated ^-quoted value")
		}
		delim := p.s[p.pos+1]
		end := strings.IndexByte(p.s[p.pos+2:], delim)
		if end < 0 {
			return "", p.errorf("unterminated ^-quoted value")
		}
		v := p.s[p.pos+2 : p.pos+2+end]
		p.pos += end + 3
		return v, nil
	case '$':
		return "", p.errorf("variables ($(...)) are not supported")
	}
	start := p.pos
	for p.pos < len(p.s) && isWordByte(p.s[p.pos]) {
		p.pos++
	}
	if start == p.pos {
		return "", p.errorf("unexpected character %q", p.s[p.pos])
	}
	return p.s[start:p.pos], nil
}

func isWordByte(c byte) bool {
	return !unicode.IsSpace(rune(c)) && !strings.ContainsRune("()\"'#^$&+|", rune(c))
}

// ParseXRSL parses an xRSL body into one JobRequest per job. Units as xRSL defines them: memory and disk
// in MB (taken as MiB, as arcsub does when it converts to ADL), memory per slot, walltime and cputime in
// minutes unless a unit is given.
func ParseXRSL(body string) ([]*JobRequest, error) {
	jobs, err := splitXRSL(body)
	if err != nil {
		return nil, err
	}
	out := make([]*JobRequest, 0, len(jobs))
	for _, rels := range jobs {
		jr, err := xrslJob(rels)
		if err != nil {
			return nil, err
		}
		out = append(out, jr)
	}
	return out, nil
}

func xrslJob(rels []xrslRelation) (*JobRequest, error) {
	jr := &JobRequest{}
	d := &jr.Description
	var count, perNode, memMB, diskMB, wall, cpu int64
	var join bool
	type file struct{ name, url string }
	var inputs, outputs []file
	for _, r := range rels {
		if r.op != "=" {
			return nil, descError("xRSL %s%s: only '=' is supported", r.attr, r.op)
		}
		one := func() (string, error) {
			if len(r.values) != 1 || r.values[0].seq {
				return "", descError("xRSL %s: want one value", r.attr)
			}
			return r.values[0].str, nil
		}
		num := func(hi int64) (int64, error) {
			s, err := one()
			if err != nil {
				return 0, err
			}
			v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			if err != nil || v < 0 || v > hi {
				return 0, descError("xRSL %s %.40q: want an integer between 0 and %d", r.attr, s, hi)
			}
			return v, nil
		}
		pairs := func() ([]file, error) {
			var fs []file
			for _, v := range r.values {
				if !v.seq || len(v.list) == 0 || len(v.list) > 3 || v.list[0].seq {
					return nil, descError("xRSL %s: want (name url) pairs", r.attr)
				}
				f := file{name: v.list[0].str}
				if len(v.list) > 1 && !v.list[1].seq {
					f.url = v.list[1].str
				}
				fs = append(fs, f)
			}
			return fs, nil
		}
		var err error
		switch r.attr {
		case "executable":
			var v string
			v, err = one()
			d.Executable = executable(v)
		case "arguments":
			for _, v := range r.values {
				if v.seq {
					return nil, descError("xRSL arguments: want literals")
				}
				d.Arguments = append(d.Arguments, v.str)
			}
		case "jobname":
			d.Name, err = one()
		case "queue":
			d.Queue, err = one()
		case "count":
			count, err = num(math.MaxInt32)
		case "countpernode":
			perNode, err = num(math.MaxInt32)
		case "memory":
			memMB, err = num(1 << 24) // 16 TB per slot: no overflow times count
		case "disk":
			diskMB, err = num(1 << 40)
		case "walltime":
			wall, err = xrslDuration(r)
		case "cputime":
			cpu, err = xrslDuration(r)
		case "runtimeenvironment":
			for _, v := range r.values {
				if v.seq {
					return nil, descError("xRSL runtimeenvironment: want names")
				}
				d.RuntimeEnvironments = append(d.RuntimeEnvironments, v.str)
			}
		case "environment":
			for _, v := range r.values {
				if !v.seq || len(v.list) != 2 || v.list[0].seq || v.list[1].seq {
					return nil, descError("xRSL environment: want (NAME value) pairs")
				}
				if d.Environment == nil {
					d.Environment = map[string]string{}
				}
				d.Environment[v.list[0].str] = v.list[1].str
			}
		case "stdout":
			var v string
			if v, err = one(); err == nil {
				jr.Stdout, err = sessionFile("stdout", v)
			}
		case "stderr":
			var v string
			if v, err = one(); err == nil {
				jr.Stderr, err = sessionFile("stderr", v)
			}
		case "join":
			var v string
			v, err = one()
			join = strings.EqualFold(v, "yes") || strings.EqualFold(v, "true")
		case "gmlog":
			var v string
			if v, err = one(); err == nil {
				jr.LogDir, err = sessionFile("gmlog", v)
			}
		case "inputfiles":
			var fs []file
			fs, err = pairs()
			inputs = append(inputs, fs...)
		case "outputfiles":
			var fs []file
			fs, err = pairs()
			outputs = append(outputs, fs...)
		case "delegationid":
			jr.DelegationID, err = one()
		default:
			// Attributes that do not change how the Pod runs (priority, rerun, notify, ...) are accepted and
			// ignored, as A-REX ignores what its LRMS cannot do.
		}
		if err != nil {
			return nil, err
		}
	}
	if count == 0 {
		count = max(perNode, 1)
	}
	if perNode != 0 && perNode < count {
		return nil, descError("xRSL countpernode %d < count %d: multi-node jobs are not supported", perNode, count)
	}
	d.Cores = int32(count)
	if memMB > 0 {
		d.MemoryMiB = memMB * count
	}
	d.DiskMiB = diskMB
	if wall == 0 && cpu > 0 {
		wall = ceilDiv(cpu, count)
	}
	d.WallTimeSeconds = wall
	if join && jr.Stderr == "" {
		jr.Stderr = jr.Stdout
	}
	for _, f := range inputs {
		if err := jr.addInput(f.name, f.url); err != nil {
			return nil, err
		}
	}
	for _, f := range outputs {
		if remoteURL(f.url) {
			return nil, descError("output file %.80q: remote target %.120q: this gateway keeps outputs in the session directory only", f.name, f.url)
		}
		if err := jr.addOutput(f.name); err != nil {
			return nil, err
		}
	}
	return jr.finish(), nil
}

// xrslDuration reads walltime/cputime: minutes by default, or a number with a unit ("2 hours",
// "7200 seconds"), or "HH:MM[:SS]".
func xrslDuration(r xrslRelation) (int64, error) {
	var parts []string
	for _, v := range r.values {
		if v.seq {
			return 0, descError("xRSL %s: want a duration", r.attr)
		}
		parts = append(parts, strings.Fields(v.str)...)
	}
	bad := descError("xRSL %s %.40q: want minutes, a number and a unit, or HH:MM[:SS]", r.attr, strings.Join(parts, " "))
	if len(parts) == 1 && strings.Contains(parts[0], ":") {
		fields := strings.Split(parts[0], ":")
		if len(fields) > 3 {
			return 0, bad
		}
		var secs int64
		mult := []int64{3600, 60, 1}[3-len(fields):]
		if len(fields) == 2 {
			mult = []int64{3600, 60}
		}
		for i, f := range fields {
			v, err := strconv.ParseInt(f, 10, 64)
			if err != nil || v < 0 || v > 1<<31 {
				return 0, bad
			}
			secs += v * mult[i]
		}
		return secs, nil
	}
	if len(parts) == 0 || len(parts) > 2 {
		return 0, bad
	}
	v, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil || v < 0 || v > 1<<31 {
		return 0, bad
	}
	unit := int64(60)
	if len(parts) == 2 {
		switch strings.ToLower(parts[1]) {
		case "s", "sec", "secs", "second", "seconds":
			unit = 1
		case "m", "min", "mins", "minute", "minutes":
			unit = 60
		case "h", "hour", "hours":
			unit = 3600
		case "d", "day", "days":
			unit = 86400
		case "w", "week", "weeks":
			unit = 7 * 86400
		default:
			return 0, bad
		}
	}
	return v * unit, nil
}

// splitXRSLJobs cuts a multi-job body "+(&...)(&...)" into the text of each job ("&..."), matching
// parentheses outside quoted literals and (* comments *), without judging the jobs themselves: each is
// then parsed alone, so that one bad job gets its own error and every job keeps only its own text. A
// single-job body is returned whole.
func splitXRSLJobs(body string) ([]string, error) {
	s := strings.TrimSpace(body)
	if !strings.HasPrefix(s, "+") {
		return []string{s}, nil
	}
	var jobs []string
	depth, start := 0, -1
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\'':
			// A quoted literal; a doubled quote inside is the quote itself.
			for i++; i < len(s); i++ {
				if s[i] == c {
					if i+1 < len(s) && s[i+1] == c {
						i++
						continue
					}
					break
				}
			}
			if i >= len(s) {
				return nil, descError("xRSL: unterminated quoted literal")
			}
		case c == '(' && i+1 < len(s) && s[i+1] == '*':
			end := strings.Index(s[i+2:], "*)")
			if end < 0 {
				return nil, descError("xRSL: unterminated comment")
			}
			i += end + 3
		case c == '(':
			if depth == 0 {
				start = i + 1
			}
			depth++
		case c == ')':
			depth--
			if depth < 0 {
				return nil, descError("xRSL at byte %d: unbalanced ')'", i)
			}
			if depth == 0 {
				jobs = append(jobs, strings.TrimSpace(s[start:i]))
			}
		case depth == 0 && !isSpace(c):
			return nil, descError("xRSL at byte %d: expected '(' before a job of a multi-job description", i)
		}
	}
	if depth != 0 {
		return nil, descError("xRSL: unbalanced '('")
	}
	if len(jobs) == 0 {
		return nil, descError("xRSL: multi-job description with no job")
	}
	return jobs, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
