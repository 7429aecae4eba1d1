package arcrest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/kubehtc/kubehtc/gridgateway/server"
)

// OutputStore adapts a Store to the gRPC API's read-only view of session directories
// (server.OutputStore), so that a job's files are the same through ARC REST and gRPC.
func OutputStore(st Store) server.OutputStore { return outputStore{st} }

type outputStore struct{ st Store }

// ListFiles implements server.OutputStore: a depth-first walk of the session area.
func (o outputStore) ListFiles(ctx context.Context, namespace, name string, limit int) ([]server.OutputFile, error) {
	key := JobKey{Namespace: namespace, Name: name}
	var out []server.OutputFile
	var walk func(dir string) error
	walk = func(dir string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		entries, err := o.st.List(key, AreaSession, dir)
		if err != nil {
			if isNotExist(err) && dir == "" {
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
			out = append(out, server.OutputFile{Path: p, Size: e.Size, Modified: e.Modified})
		}
		return nil
	}
	if err := walk(""); err != nil {
		return nil, err
	}
	return out, nil
}

// OpenFile implements server.OutputStore.
func (o outputStore) OpenFile(_ context.Context, namespace, name, p string) (io.ReadCloser, int64, error) {
	key := JobKey{Namespace: namespace, Name: name}
	if _, err := CleanPath(p); err != nil || p == "" {
		return nil, 0, fmt.Errorf("%w: %.80q", server.ErrBadOutputPath, p)
	}
	fi, err := o.st.Stat(key, AreaSession, p)
	if err != nil {
		return nil, 0, o.wrap(err)
	}
	if fi.Dir {
		return nil, 0, fmt.Errorf("%.80q: %w", p, server.ErrOutputIsDir)
	}
	f, err := o.st.Open(key, AreaSession, p)
	if err != nil {
		return nil, 0, o.wrap(err)
	}
	return f, fi.Size, nil
}

func (o outputStore) wrap(err error) error {
	if errors.Is(err, ErrBadPath) {
		return fmt.Errorf("%w: %w", server.ErrBadOutputPath, err)
	}
	return err
}
