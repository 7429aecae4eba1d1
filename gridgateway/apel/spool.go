package apel

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Spool is the accounting directory:
//
//	<dir>/outgoing/            dirq QueueSimple of individual job messages: ssmsend's "path"
//	<dir>/staged/<key>         one staged record per Pod (key: <namespace>_<name>_<uid>)
//	<dir>/batches/<d>_<e>/     records on their way into the element outgoing/<d>/<e>
//	<dir>/ledger/<YYYY-MM>/<e> the records of element e that ended in that month (UTC)
//	<dir>/summaries/<YYYY-MM>  the month's APEL summary message, rewritten whenever the month grows
type Spool struct {
	dir string
	now func() time.Time
	pid int
}

// NewSpool creates the directories of an accounting directory.
func NewSpool(dir string) (*Spool, error) {
	if dir == "" {
		return nil, errors.New("accounting directory is empty")
	}
	for _, d := range []string{"outgoing", "staged", "batches", "ledger", "summaries"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	return &Spool{dir: dir, now: time.Now, pid: os.Getpid()}, nil
}

// Outgoing is the directory queue ssmsend reads.
func (s *Spool) Outgoing() string { return filepath.Join(s.dir, "outgoing") }

// writeAtomic writes data to path through a temporary file in the same directory and a rename.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// Stage stores the record of one Pod under key, replacing an earlier staging of the same Pod.
func (s *Spool) Stage(key string, rec Record) error {
	if err := rec.Validate(); err != nil {
		return err
	}
	var b bytes.Buffer
	rec.WriteTo(&b)
	return writeAtomic(filepath.Join(s.dir, "staged", key), b.Bytes())
}

// Staged lists the keys of staged records.
func (s *Spool) Staged() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, "staged"))
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, e := range ents {
		if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			keys = append(keys, e.Name())
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// elementName is a dirq QueueSimple element name: 8 hex digits of seconds, 5 of microseconds (python-dirq
// formats the fraction times 100000) and one of the pid; the directory is the time rounded down to 60 s.
func (s *Spool) elementName(t time.Time) (dir, elem string) {
	sec := t.Unix()
	return fmt.Sprintf("%08x", sec-sec%60), fmt.Sprintf("%08x%05x%01x", sec, t.Nanosecond()/10000, s.pid%16)
}

// Commit moves the staged records of keys into one outgoing message (and the ledger) and returns the
// dirq element name. Keys must be records of Pods whose accounting is recorded in the API server.
func (s *Spool) Commit(keys []string) (string, error) {
	if len(keys) == 0 {
		return "", nil
	}
	t := s.now()
	var d, e string
	for {
		d, e = s.elementName(t)
		_, err1 := os.Lstat(filepath.Join(s.Outgoing(), d, e))
		_, err2 := os.Lstat(filepath.Join(s.dir, "batches", d+"_"+e))
		if errors.Is(err1, fs.ErrNotExist) && errors.Is(err2, fs.ErrNotExist) {
			break
		}
		t = t.Add(10 * time.Microsecond)
	}
	batch := filepath.Join(s.dir, "batches", d+"_"+e)
	if err := os.Mkdir(batch, 0o755); err != nil {
		return "", err
	}
	for _, k := range keys {
		if err := os.Rename(filepath.Join(s.dir, "staged", k), filepath.Join(batch, k)); err != nil {
			return "", fmt.Errorf("moving staged record %s into batch %s: %w", k, e, err)
		}
	}
	return d + "/" + e, s.finish(batch)
}

// Recover finishes the batches a stopped process left.
func (s *Spool) Recover() error {
	ents, err := os.ReadDir(filepath.Join(s.dir, "batches"))
	if err != nil {
		return err
	}
	for _, b := range ents {
		if b.IsDir() {
			if err := s.finish(filepath.Join(s.dir, "batches", b.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// finish writes a batch's ledger files and its element (unless present: a batch is finished at most
// once), refreshes the summaries of its months and removes the batch. Each step is idempotent; a crash
// between the element's rename and the batch's removal, followed by ssmsend consuming the element
// before the restart, is the one window in which a batch would be sent twice (APEL's server keeps one
// record per MachineName, LocalJobId and EndTime).
func (s *Spool) finish(batch string) error {
	d, e, ok := strings.Cut(filepath.Base(batch), "_")
	if !ok {
		return fmt.Errorf("batch directory %s: name is not <dir>_<element>", batch)
	}
	ents, err := os.ReadDir(batch)
	if err != nil {
		return err
	}
	var records []Record
	for _, ent := range ents {
		data, err := os.ReadFile(filepath.Join(batch, ent.Name()))
		if err != nil {
			return err
		}
		recs, err := ParseRecords(bytes.NewReader(data))
		if err != nil {
			return fmt.Errorf("staged record %s: %w", ent.Name(), err)
		}
		records = append(records, recs...)
	}
	byMonth := map[string][]Record{}
	for _, r := range records {
		m := time.Unix(r.EndTime, 0).UTC().Format("2006-01")
		byMonth[m] = append(byMonth[m], r)
	}
	for m, recs := range byMonth {
		if err := os.MkdirAll(filepath.Join(s.dir, "ledger", m), 0o755); err != nil {
			return err
		}
		if err := writeAtomic(filepath.Join(s.dir, "ledger", m, e), IndividualMessage(recs)); err != nil {
			return err
		}
	}
	if len(records) > 0 {
		if err := s.enqueue(d, e, IndividualMessage(records)); err != nil {
			return err
		}
	}
	for m := range byMonth {
		if err := s.writeSummary(m); err != nil {
			return err
		}
	}
	return os.RemoveAll(batch)
}

// enqueue adds the element d/e unless it exists, as dirq does: "<e>.tmp", then made visible at once.
func (s *Spool) enqueue(d, e string, data []byte) error {
	dir := filepath.Join(s.Outgoing(), d)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	final := filepath.Join(dir, e)
	if _, err := os.Lstat(final); err == nil {
		return nil
	}
	tmp := final + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := os.Link(tmp, final); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return os.Remove(tmp)
}

// Ledger returns the records accounted in a month ("2006-01").
func (s *Spool) Ledger(month string) ([]Record, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, "ledger", month))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, ent := range ents {
		if strings.HasPrefix(ent.Name(), ".") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.dir, "ledger", month, ent.Name()))
		if err != nil {
			return nil, err
		}
		recs, err := ParseRecords(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("ledger %s/%s: %w", month, ent.Name(), err)
		}
		out = append(out, recs...)
	}
	return out, nil
}

// writeSummary rewrites the month's summary message from its ledger.
func (s *Spool) writeSummary(month string) error {
	recs, err := s.Ledger(month)
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(s.dir, "summaries", month), SummaryMessage(Summarise(recs)))
}

// OutgoingMessages returns the paths of the elements in the outgoing queue, in queue order.
func (s *Spool) OutgoingMessages() ([]string, error) {
	var out []string
	dirs, err := os.ReadDir(s.Outgoing())
	if err != nil {
		return nil, err
	}
	for _, d := range dirs {
		if !d.IsDir() || len(d.Name()) != 8 {
			continue
		}
		ents, err := os.ReadDir(filepath.Join(s.Outgoing(), d.Name()))
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if len(e.Name()) == 14 && !strings.Contains(e.Name(), ".") {
				out = append(out, filepath.Join(s.Outgoing(), d.Name(), e.Name()))
			}
		}
	}
	sort.Strings(out)
	return out, nil
}
