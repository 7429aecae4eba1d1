package arcrest

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/kubehtc/kubehtc/gridgateway/session"
	"github.com/kubehtc/kubehtc/gridgateway/translate"
)

// MaxDescriptionBytes bounds one job description body (ADL or xRSL); bigger bodies are refused with 413.
const MaxDescriptionBytes = 1 << 20

// ErrDescription is wrapped by every error about a job description's syntax or content.
var ErrDescription = errors.New("invalid job description")

func descError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrDescription, fmt.Sprintf(format, args...))
}

// JobRequest is one parsed job description: what the part-1 translation needs, plus what only the ARC
// interface uses (the delegation, the names of stdout, stderr and the log directory).
type JobRequest struct {
	// Description goes to translate.Translate. Queue may be empty: the gateway then picks the VO's first
	// queue, as A-REX picks its default queue.
	Description translate.Description
	// DelegationID names the delegation whose proxy the job uses (ADL DataStaging/DelegationID).
	DelegationID string
	// Stdout and Stderr are session-relative file names of the job's standard output and error.
	Stdout, Stderr string
	// LogDir is the session-relative directory of the grid manager's log (xRSL gmlog).
	LogDir string
}

// sessionFile checks a file name of a description: a relative path inside the session directory, without
// control characters (CleanPath's rules, after removing "./" and "a/.." steps).
func sessionFile(what, name string) (string, error) {
	if name == "" {
		return "", nil
	}
	if path.IsAbs(name) {
		return "", descError("%s %.80q: must be a relative path inside the session directory", what, name)
	}
	clean, err := session.CleanPath(path.Clean(name))
	if err != nil || clean == "" {
		return "", descError("%s %.80q: must be a relative path inside the session directory, without control characters", what, name)
	}
	return clean, nil
}

// remoteURL reports whether a file source or target names a remote location (something the gateway would
// have to stage) rather than "the client uploads it" / "leave it in the session directory".
func remoteURL(u string) bool {
	u = strings.TrimSpace(u)
	return u != "" && strings.Contains(u, "://") && !strings.HasPrefix(strings.ToLower(u), "file://")
}

// addFiles records the session files of a request: plain names become the description's inputs and
// outputs (translate validates them); directories (a trailing '/') and nested paths stay in the session
// directory for arcget but are not declared outputs.
func (jr *JobRequest) addOutput(name string) error {
	clean, err := sessionFile("output file", name)
	if err != nil || clean == "" {
		return err
	}
	if strings.HasSuffix(name, "/") || strings.Contains(clean, "/") {
		return nil
	}
	for _, o := range jr.Description.Outputs {
		if o == clean {
			return nil
		}
	}
	jr.Description.Outputs = append(jr.Description.Outputs, clean)
	return nil
}

func (jr *JobRequest) addInput(name, source string) error {
	if remoteURL(source) {
		return descError("input file %.80q: remote source %.120q: this gateway does not stage remote inputs; upload the file instead", name, source)
	}
	clean, err := sessionFile("input file", name)
	if err != nil {
		return err
	}
	if clean == "" {
		return descError("input file without a name")
	}
	if strings.Contains(clean, "/") {
		return descError("input file %.80q: must be a plain file name", name)
	}
	for _, in := range jr.Description.Inputs {
		if in == clean {
			return descError("input file %q is listed twice", clean)
		}
	}
	jr.Description.Inputs = append(jr.Description.Inputs, clean)
	return nil
}

// finish drops the log directory from the declared outputs: arcsub lists it as an OutputFile too, but it
// is a directory the gateway fills, not a file the job must leave.
func (jr *JobRequest) finish() *JobRequest {
	if jr.LogDir != "" {
		jr.Description.Outputs = slices.DeleteFunc(jr.Description.Outputs, func(o string) bool { return o == jr.LogDir })
	}
	return jr
}

// executable turns an ARC executable into a container command: a relative path is run from the session
// directory, as A-REX does.
func executable(p string) string {
	if p == "" || strings.HasPrefix(p, "/") || strings.HasPrefix(p, "./") || strings.HasPrefix(p, "$") {
		return p
	}
	return "./" + p
}

// ceilDiv is a/b rounded up, for positive b.
func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// bytesToMiB converts a byte count to MiB, rounding up.
func bytesToMiB(b int64) int64 { return ceilDiv(b, 1<<20) }
