package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"time"
)

// ErrBadOutputPath marks a path that would leave a job's session directory.
var ErrBadOutputPath = errors.New("path outside the session directory")

// ErrOutputIsDir marks a download of a directory.
var ErrOutputIsDir = errors.New("a directory, not a file")

// OutputFile is a file of a job's session directory.
type OutputFile struct {
	// Path is slash-separated and relative to the session directory.
	Path string
	// Size in bytes.
	Size int64
	// Modified is the last change.
	Modified time.Time
}

// Outputs is the read side of a Store that the gRPC API's ListOutputs and GetOutput use (OutputStore
// adapts a Store to it), so that a job's files are the same through ARC REST and gRPC. Jobs are named by
// GridJob namespace and name.
type Outputs interface {
	// ListFiles lists every file under the job's session directory, recursively, sorted by path; an
	// absent directory is an empty list.
	ListFiles(ctx context.Context, namespace, name string, limit int) ([]OutputFile, error)
	// OpenFile opens one file for reading and returns its size; fs.ErrNotExist if absent,
	// ErrBadOutputPath for a path outside the session directory, ErrOutputIsDir for a directory.
	OpenFile(ctx context.Context, namespace, name, path string) (io.ReadCloser, int64, error)
}

// OutputStore adapts a Store to the read-only view of session directories (Outputs).
func OutputStore(st Store) Outputs { return outputStore{st} }

type outputStore struct{ st Store }

// ListFiles implements Outputs: a depth-first walk of the session area.
func (o outputStore) ListFiles(ctx context.Context, namespace, name string, limit int) ([]OutputFile, error) {
	key := JobKey{Namespace: namespace, Name: name}
	var out []OutputFile
	var walk func(dir string) error
	walk = func(dir string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		entries, err := o.st.List(key, AreaSession, dir)
		if err != nil {
			if IsNotExist(err) && dir == "" {
				return nil // nothing stored yet
			}
			return o.wrap(err)
		}
		for _, e := range entries {
			p := path.Join(dir, e.Name)
			if e.Dir {
				if err := walk(p); err != nil {
					return err
				}
				continue
			}
			if len(out) >= limit {
				return fmt.Errorf("the session directory holds more than %d files", limit)
			}
			out = append(out, OutputFile{Path: p, Size: e.Size, Modified: e.Modified})
		}
		return nil
	}
	if err := walk(""); err != nil {
		return nil, err
	}
	return out, nil
}

// OpenFile implements Outputs.
func (o outputStore) OpenFile(_ context.Context, namespace, name, p string) (io.ReadCloser, int64, error) {
	key := JobKey{Namespace: namespace, Name: name}
	if _, err := CleanPath(p); err != nil || p == "" {
		return nil, 0, fmt.Errorf("%w: %.80q", ErrBadOutputPath, p)
	}
	fi, err := o.st.Stat(key, AreaSession, p)
	if err != nil {
		return nil, 0, o.wrap(err)
	}
	if fi.Dir {
		return nil, 0, fmt.Errorf("%.80q: %w", p, ErrOutputIsDir)
	}
	f, err := o.st.Open(key, AreaSession, p)
	if err != nil {
		return nil, 0, o.wrap(err)
	}
	return f, fi.Size, nil
}

func (o outputStore) wrap(err error) error {
	if errors.Is(err, ErrBadPath) {
		return fmt.Errorf("%w: %w", ErrBadOutputPath, err)
	}
	return err
}
