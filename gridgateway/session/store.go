package session

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
)

// Store keeps the files of each job: its session directory (inputs the client uploads, outputs the job
// leaves) and its control files (the original description, the gateway's log of the job). Jobs are named
// by their namespace and GridJob name. Paths are slash-separated and relative; implementations refuse any
// path that would leave the job's area (ErrBadPath).
//
// FileStore implements it on a directory; in a real cluster that directory is a ReadWriteMany
// PersistentVolume mounted by the gateway, so that it survives restarts and Pods can mount their session
// (translate.PodOptions.SessionClaimName).
type Store interface {
	// Put writes a file of area (AreaSession or AreaControl) from r, at most limit bytes (ErrTooLarge
	// beyond, leaving no partial file), creating parent directories.
	Put(job JobKey, area, name string, r io.Reader, limit int64) (int64, error)
	// WriteAt writes r into a file at offset (a ranged upload), creating the file, keeping what is
	// around; the file may not grow beyond limit bytes (ErrTooLarge). It returns the file's new size.
	WriteAt(job JobKey, area, name string, offset int64, r io.Reader, limit int64) (int64, error)
	// Append appends data to a file, creating it (the job's log).
	Append(job JobKey, area, name string, data []byte) error
	// Open opens a file for reading.
	Open(job JobKey, area, name string) (File, error)
	// Stat describes a file or directory; fs.ErrNotExist if absent.
	Stat(job JobKey, area, name string) (FileInfo, error)
	// List lists a directory (sorted by name).
	List(job JobKey, area, dir string) ([]FileInfo, error)
	// Remove deletes a file or an empty directory; removing the empty name removes nothing.
	Remove(job JobKey, area, name string) error
	// RemoveJob deletes everything of a job.
	RemoveJob(job JobKey) error
	// Jobs lists the jobs that have files, with the last change of their area, for lifetime cleanup.
	Jobs() ([]StoredJob, error)
}

// Areas of a job in the Store.
const (
	// AreaSession is the session directory: inputs and outputs, served under jobs/<id>/session.
	AreaSession = "session"
	// AreaControl holds the gateway's files of the job: its description and log (diagnose/*).
	AreaControl = "control"
)

// JobKey names a job in the Store.
type JobKey struct {
	// Namespace and Name of the GridJob.
	Namespace, Name string
}

// String is namespace/name.
func (k JobKey) String() string { return k.Namespace + "/" + k.Name }

// KeyOf is the Store key of a GridJob.
func KeyOf(gj *kubehtcv1alpha1.GridJob) JobKey { return JobKey{Namespace: gj.Namespace, Name: gj.Name} }

// StoredJob is a job with files in the Store.
type StoredJob struct {
	// Key names the job.
	Key JobKey
	// Modified is the last change of the job's directory.
	Modified time.Time
}

// File is an open stored file.
type File interface {
	io.ReadSeekCloser
}

// FileInfo describes a stored file or directory.
type FileInfo struct {
	// Name is the base name.
	Name string
	// Size in bytes (files).
	Size int64
	// Dir is set for a directory.
	Dir bool
	// Modified is the last change.
	Modified time.Time
}

var (
	// ErrBadPath is returned for a path that is absolute, climbs out of the job's area or holds odd bytes.
	ErrBadPath = errors.New("path outside the session directory")
	// ErrTooLarge is returned when a file exceeds the allowed size.
	ErrTooLarge = errors.New("file too large")
)

// CleanPath checks a client-supplied relative path (already URL-decoded) and returns its clean form; ""
// is the area itself. Absolute paths, "..", backslashes, NUL and control bytes are refused.
func CleanPath(p string) (string, error) {
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return "", nil
	}
	if strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00") {
		return "", fmt.Errorf("%w: %.80q", ErrBadPath, p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." || seg == "." || seg == "" {
			return "", fmt.Errorf("%w: %.80q", ErrBadPath, p)
		}
		for _, r := range seg {
			if r < 0x20 || r == 0x7f {
				return "", fmt.Errorf("%w: %.80q", ErrBadPath, p)
			}
		}
	}
	return path.Clean(p), nil
}

// FileStore is a Store on a local directory: <root>/<namespace>/<name>/{session,control}/. Every access
// goes through os.Root, so symbolic links a job leaves cannot lead outside its directory either.
type FileStore struct {
	root string
}

// NewFileStore returns a FileStore rooted at dir, creating it.
func NewFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("session store: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	return &FileStore{root: abs}, nil
}

var _ Store = &FileStore{}

func validKey(k JobKey) error {
	for _, s := range []string{k.Namespace, k.Name} {
		if s == "" || strings.ContainsAny(s, "/\\\x00") || s == "." || s == ".." {
			return fmt.Errorf("%w: job %q", ErrBadPath, k.String())
		}
	}
	return nil
}

// area opens the job's area as an os.Root, creating it when create is set.
func (s *FileStore) area(job JobKey, area string, create bool) (*os.Root, error) {
	if err := validKey(job); err != nil {
		return nil, err
	}
	if area != AreaSession && area != AreaControl {
		return nil, fmt.Errorf("unknown store area %q", area)
	}
	dir := filepath.Join(s.root, job.Namespace, job.Name, area)
	if create {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, err
		}
	}
	return os.OpenRoot(dir)
}

func (s *FileStore) rel(name string) (string, error) {
	clean, err := CleanPath(name)
	if err != nil {
		return "", err
	}
	if clean == "" {
		return ".", nil
	}
	return filepath.FromSlash(clean), nil
}

// Put implements Store.
func (s *FileStore) Put(job JobKey, area, name string, r io.Reader, limit int64) (int64, error) {
	rel, err := s.rel(name)
	if err != nil {
		return 0, err
	}
	if rel == "." {
		return 0, fmt.Errorf("%w: a file needs a name", ErrBadPath)
	}
	root, err := s.area(job, area, true)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	if dir := filepath.Dir(rel); dir != "." {
		if err := root.MkdirAll(dir, 0o750); err != nil {
			return 0, err
		}
	}
	tmp := rel + ".kubehtc-upload"
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, io.LimitReader(r, limit+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > limit {
		err = fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	if err != nil {
		_ = root.Remove(tmp)
		return 0, err
	}
	return n, root.Rename(tmp, rel)
}

// WriteAt implements Store.
func (s *FileStore) WriteAt(job JobKey, area, name string, offset int64, r io.Reader, limit int64) (int64, error) {
	rel, err := s.rel(name)
	if err != nil {
		return 0, err
	}
	if rel == "." {
		return 0, fmt.Errorf("%w: a file needs a name", ErrBadPath)
	}
	if offset < 0 || offset > limit {
		return 0, fmt.Errorf("%w: offset %d beyond the limit of %d bytes", ErrTooLarge, offset, limit)
	}
	root, err := s.area(job, area, true)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	if dir := filepath.Dir(rel); dir != "." {
		if err := root.MkdirAll(dir, 0o750); err != nil {
			return 0, err
		}
	}
	f, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE, 0o640)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0, err
	}
	n, err := io.Copy(f, io.LimitReader(r, limit-offset+1))
	if err == nil && offset+n > limit {
		_ = f.Truncate(offset)
		err = fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	if err != nil {
		return 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Append implements Store.
func (s *FileStore) Append(job JobKey, area, name string, data []byte) error {
	rel, err := s.rel(name)
	if err != nil {
		return err
	}
	if rel == "." {
		return fmt.Errorf("%w: a file needs a name", ErrBadPath)
	}
	root, err := s.area(job, area, true)
	if err != nil {
		return err
	}
	defer root.Close()
	f, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Open implements Store.
func (s *FileStore) Open(job JobKey, area, name string) (File, error) {
	rel, err := s.rel(name)
	if err != nil {
		return nil, err
	}
	root, err := s.area(job, area, false)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return root.Open(rel)
}

// Stat implements Store.
func (s *FileStore) Stat(job JobKey, area, name string) (FileInfo, error) {
	rel, err := s.rel(name)
	if err != nil {
		return FileInfo{}, err
	}
	root, err := s.area(job, area, false)
	if err != nil {
		return FileInfo{}, err
	}
	defer root.Close()
	fi, err := root.Stat(rel)
	if err != nil {
		return FileInfo{}, err
	}
	return FileInfo{Name: path.Base(filepath.ToSlash(rel)), Size: fi.Size(), Dir: fi.IsDir(), Modified: fi.ModTime()}, nil
}

// List implements Store.
func (s *FileStore) List(job JobKey, area, dir string) ([]FileInfo, error) {
	rel, err := s.rel(dir)
	if err != nil {
		return nil, err
	}
	root, err := s.area(job, area, false)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.Open(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	var out []FileInfo
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".kubehtc-upload") {
			continue // an upload in progress
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, FileInfo{Name: e.Name(), Size: fi.Size(), Dir: e.IsDir(), Modified: fi.ModTime()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Remove implements Store.
func (s *FileStore) Remove(job JobKey, area, name string) error {
	rel, err := s.rel(name)
	if err != nil || rel == "." {
		return err
	}
	root, err := s.area(job, area, false)
	if err != nil {
		return err
	}
	defer root.Close()
	return root.Remove(rel)
}

// RemoveJob implements Store.
func (s *FileStore) RemoveJob(job JobKey) error {
	if err := validKey(job); err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(s.root, job.Namespace, job.Name))
}

// Jobs implements Store.
func (s *FileStore) Jobs() ([]StoredJob, error) {
	nss, err := os.ReadDir(s.root)
	if err != nil {
		return nil, err
	}
	var out []StoredJob
	for _, ns := range nss {
		if !ns.IsDir() {
			continue
		}
		jobs, err := os.ReadDir(filepath.Join(s.root, ns.Name()))
		if err != nil {
			continue
		}
		for _, j := range jobs {
			fi, err := j.Info()
			if err != nil || !j.IsDir() {
				continue
			}
			out = append(out, StoredJob{Key: JobKey{Namespace: ns.Name(), Name: j.Name()}, Modified: fi.ModTime()})
		}
	}
	return out, nil
}

// IsNotExist reports a missing file of any Store.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// Space implements StoreSpace: the size and free space of the file system under the store.
func (s *FileStore) Space() (total, free int64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.root, &st); err != nil {
		return 0, 0, err
	}
	return int64(st.Blocks) * st.Bsize, int64(st.Bavail) * st.Bsize, nil
}
