package arcrest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"k8s.io/klog/v2"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/gridgateway/auth"
	"github.com/kubehtc/kubehtc/gridgateway/jobs"
	"github.com/kubehtc/kubehtc/gridgateway/session"
	"github.com/kubehtc/kubehtc/gridgateway/translate"
)

// Labels and annotations of the GridJobs the ARC interface creates.
const (
	// InterfaceLabel marks GridJobs submitted through ARC REST (value InterfaceValue).
	InterfaceLabel = kubehtcv1alpha1.InterfaceLabel
	// InterfaceValue is the value of InterfaceLabel.
	InterfaceValue = kubehtcv1alpha1.InterfaceARCREST
	// StdoutAnnotation keeps the session-relative name of the job's standard output (GLUE2 StdOut; arccat
	// reads it).
	StdoutAnnotation = kubehtcv1alpha1.StdoutAnnotation
	// StderrAnnotation keeps the name of the job's standard error (GLUE2 StdErr).
	StderrAnnotation = kubehtcv1alpha1.StderrAnnotation
	// LogDirAnnotation keeps the name of the job's log directory (xRSL gmlog, GLUE2 LogDir).
	LogDirAnnotation = kubehtcv1alpha1.LogDirAnnotation
	// DelegationAnnotation is the delegation the job uses.
	DelegationAnnotation = kubehtcv1alpha1.DelegationAnnotation
	// CollectedAnnotation is set (to the time) once the job's outputs are in its session directory; until
	// then a finished job reports FINISHING.
	CollectedAnnotation = kubehtcv1alpha1.OutputsCollectedAnnotation
	// MaxBulkIDs bounds the ids of one bulk action.
	MaxBulkIDs = 1000
	// DefaultMaxJobsPerRequest bounds the descriptions of one submission (Options.MaxJobsPerRequest).
	DefaultMaxJobsPerRequest = 1000
)

// jobID is the ARC id of a GridJob: <namespace>.<name> (the same as the gRPC API's).
func jobID(gj *kubehtcv1alpha1.GridJob) string { return jobs.ID(gj) }

// jobs routes /jobs and /jobs/<id>/...
func (s *Server) jobs(w http.ResponseWriter, r *http.Request, id *auth.Identity, tail string) error {
	if tail == "" {
		switch r.Method {
		case http.MethodGet:
			if err := requireScope(id, auth.ScopeRead); err != nil {
				return err
			}
			return s.listJobs(w, r, id)
		case http.MethodPost:
			return s.jobAction(w, r, id)
		default:
			return errorf(http.StatusMethodNotAllowed, "Method not allowed")
		}
	}
	jid, sub, _ := strings.Cut(tail, "/")
	area, rest, _ := strings.Cut(sub, "/")
	switch area {
	case "session":
		return s.session(w, r, id, jid, rest)
	case "diagnose":
		if err := requireScope(id, auth.ScopeRead); err != nil {
			return err
		}
		return s.diagnose(w, r, id, jid, rest)
	}
	return errorf(http.StatusNotFound, "Not Found")
}

// getJob fetches a job of the caller; another owner's job, a malformed id and a job being deleted are all
// "not found", as in A-REX.
func (s *Server) getJob(ctx context.Context, id *auth.Identity, jid string) (*kubehtcv1alpha1.GridJob, error) {
	gj, err := s.core.Get(ctx, id, jid)
	switch {
	case errors.Is(err, jobs.ErrNotFound), errors.Is(err, jobs.ErrForbidden), errors.Is(err, jobs.ErrInvalid):
		return nil, errorf(http.StatusNotFound, "Job not found")
	case err != nil:
		return nil, err
	case gj.DeletionTimestamp != nil:
		return nil, errorf(http.StatusNotFound, "Job not found")
	}
	return gj, nil
}

// restState is the ARC REST state of a job: the controller's state, except that a finished job whose
// outputs are not yet in the session directory is FINISHING (A-REX's stage-out).
func restState(gj *kubehtcv1alpha1.GridJob) kubehtcv1alpha1.GridJobState {
	st := gj.Status.State
	if st == "" {
		return kubehtcv1alpha1.StateAccepting
	}
	if (st == kubehtcv1alpha1.StateFinished || st == kubehtcv1alpha1.StateFailed) && gj.Annotations[CollectedAnnotation] == "" {
		return kubehtcv1alpha1.StateFinishing
	}
	if gj.DeletionTimestamp != nil {
		return kubehtcv1alpha1.StateWiped
	}
	return st
}

// listJobs answers GET /jobs[?state=A,B].
func (s *Server) listJobs(w http.ResponseWriter, r *http.Request, id *auth.Identity) error {
	list, err := s.core.List(r.Context(), id)
	if err != nil {
		return err
	}
	var states []string
	if q := r.URL.Query().Get("state"); q != "" {
		states = strings.Split(q, ",")
	}
	doc := el("jobs")
	for i := range list {
		gj := &list[i]
		if gj.DeletionTimestamp != nil {
			continue
		}
		st := string(restState(gj))
		if states != nil && !slices.Contains(states, st) {
			continue
		}
		doc.add(el("job", leaf("id", jobID(gj)), leaf("state", st)))
	}
	respond(w, r, http.StatusOK, doc)
	return nil
}

// item is one <job> of a bulk answer.
func item(code int, reason, jid string) *node {
	n := el("job", leaf("status-code", strconv.Itoa(code)), leaf("reason", reason))
	if jid != "" {
		n.add(leaf("id", jid))
	}
	return n
}

// jobAction answers POST /jobs?action=...
func (s *Server) jobAction(w http.ResponseWriter, r *http.Request, id *auth.Identity) error {
	action := r.URL.Query().Get("action")
	scope := map[string]string{
		"new": auth.ScopeCreate, "restart": auth.ScopeCreate,
		"info": auth.ScopeRead, "status": auth.ScopeRead, "delegations": auth.ScopeRead,
		"kill": auth.ScopeCancel, "clean": auth.ScopeCancel,
	}[action]
	if scope == "" {
		return errorf(http.StatusNotImplemented, "Action not implemented")
	}
	if err := requireScope(id, scope); err != nil {
		return err
	}
	if action == "new" {
		return s.submit(w, r, id)
	}
	body, err := readBody(w, r, MaxDescriptionBytes)
	if err != nil {
		return err
	}
	ids, err := parseIDs(body, r.Header.Get("Content-Type"))
	if err != nil {
		return err
	}
	doc := el("jobs")
	items := make([]*node, len(ids))
	parallel(len(ids), createWorkers, func(i int) { items[i] = s.jobItem(r, id, action, ids[i]) })
	doc.add(items...)
	respond(w, r, http.StatusCreated, doc)
	return nil
}

// parseIDs reads the ids of a bulk action: <jobs><job><id>…</id></job>…</jobs> (also without a
// Content-Type, as arcsub sends it) or JSON {"job":[{"id":…}]} / {"job":{"id":…}}.
func parseIDs(body []byte, contentType string) ([]string, error) {
	var ids []string
	if strings.HasPrefix(strings.ToLower(contentType), "application/json") {
		var doc struct {
			Job json.RawMessage `json:"job"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			return nil, errorf(http.StatusBadRequest, "malformed JSON job list: %v", err)
		}
		type one struct {
			ID string `json:"id"`
		}
		var many []one
		if err := json.Unmarshal(doc.Job, &many); err != nil {
			var single one
			if err := json.Unmarshal(doc.Job, &single); err != nil {
				return nil, errorf(http.StatusBadRequest, "malformed JSON job list: want {\"job\":[{\"id\":...}]}")
			}
			many = []one{single}
		}
		for _, j := range many {
			ids = append(ids, j.ID)
		}
	} else {
		var doc struct {
			XMLName xml.Name `xml:"jobs"`
			Jobs    []struct {
				ID string `xml:"id"`
			} `xml:"job"`
		}
		if err := xml.Unmarshal(body, &doc); err != nil {
			return nil, errorf(http.StatusBadRequest, "malformed job list: %v", err)
		}
		for _, j := range doc.Jobs {
			ids = append(ids, strings.TrimSpace(j.ID))
		}
	}
	if len(ids) > MaxBulkIDs {
		return nil, errorf(http.StatusRequestEntityTooLarge, "%d job ids, at most %d per request", len(ids), MaxBulkIDs)
	}
	return ids, nil
}

// jobItem performs one action on one job and returns its <job> item.
func (s *Server) jobItem(r *http.Request, id *auth.Identity, action, jid string) *node {
	ctx := r.Context()
	gj, err := s.getJob(ctx, id, jid)
	if err != nil {
		return item(statusOf(err), message(err), jid)
	}
	switch action {
	case "status":
		return item(http.StatusOK, "OK", jid).add(leaf("state", string(restState(gj))))
	case "info":
		return item(http.StatusOK, "OK", jid).add(el("info_document", s.activity(r, gj)))
	case "delegations":
		n := item(http.StatusOK, "OK", jid)
		if d := gj.Annotations[DelegationAnnotation]; d != "" {
			n.add(leaf("delegation_id", d))
		}
		return n
	case "kill":
		if err := s.core.Cancel(ctx, gj); err != nil {
			return item(505, "Failed to kill job: "+message(err), jid)
		}
		return item(http.StatusAccepted, "Queued for killing", jid)
	case "clean":
		// A killed job may be cleaned at once (arckill cleans right after killing): deleting the GridJob
		// deletes its Pod too.
		if !gj.Status.State.Terminal() && !gj.Spec.Cancel {
			return item(505, fmt.Sprintf("Failed to clean job: it is %s; kill it first", restState(gj)), jid)
		}
		if err := s.cleanJob(background(r), gj); err != nil {
			return item(505, "Failed to clean job: "+message(err), jid)
		}
		return item(http.StatusAccepted, "Queued for cleaning", jid)
	case "restart":
		return item(505, "Failed to restart job: restarting is not supported by this gateway; submit again", jid)
	}
	return item(http.StatusNotImplemented, "Action not implemented", jid)
}

// cleanJob removes a job: its GridJob (with the Pod and anything it owns) and its session directory.
func (s *Server) cleanJob(ctx context.Context, gj *kubehtcv1alpha1.GridJob) error {
	if err := s.core.Clean(ctx, gj); err != nil {
		return err
	}
	return s.opts.Store.RemoveJob(session.KeyOf(gj))
}

// submit answers POST /jobs?action=new: one <job> item per description, in order; a description that
// does not parse or translate gets its own error item, never a failed call. More descriptions than
// MaxJobsPerRequest is 413. Jobs are created createWorkers at a time; once the client has gone, no
// further job is started (those created are logged, as the answer cannot reach anyone).
func (s *Server) submit(w http.ResponseWriter, r *http.Request, id *auth.Identity) error {
	body, err := readBody(w, r, MaxDescriptionBytes)
	if err != nil {
		return err
	}
	doc := el("jobs")
	descs, err := parseDescriptions(body)
	if err != nil {
		doc.add(item(http.StatusInternalServerError, message(err), ""))
		respond(w, r, http.StatusCreated, doc)
		return nil
	}
	if max := s.maxJobsPerRequest(); len(descs) > max {
		return errorf(http.StatusRequestEntityTooLarge, "%d job descriptions in one request, at most %d: split the submission", len(descs), max)
	}
	items := make([]*node, len(descs))
	gone := r.Context()
	parallel(len(descs), createWorkers, func(i int) {
		d := descs[i]
		if d.err != nil {
			items[i] = item(http.StatusInternalServerError, message(d.err), "")
			return
		}
		if gone.Err() != nil {
			return // the client went away: start nothing more
		}
		gj, err := s.create(background(r), id, d.req, d.raw)
		if err != nil {
			code := http.StatusInternalServerError
			if errors.Is(err, translate.ErrForbidden) {
				code = http.StatusForbidden
			}
			items[i] = item(code, message(err), "")
			return
		}
		items[i] = item(http.StatusCreated, "Created", jobID(gj)).add(leaf("state", string(kubehtcv1alpha1.StateAccepting)))
	})
	var created []string
	for _, it := range items {
		if it != nil {
			doc.add(it)
		}
	}
	if gone.Err() != nil {
		for _, it := range doc.children {
			for _, c := range it.children {
				if c.name == "id" && c.text != "" {
					created = append(created, c.text)
				}
			}
		}
		klog.FromContext(r.Context()).Info("ARC client went away during a bulk submission; no further job started",
			"descriptions", len(descs), "created", len(created), "jobs", created)
	}
	respond(w, r, http.StatusCreated, doc)
	return nil
}

// createWorkers is how many jobs of one request are created (or acted on) at once: enough to hide the API
// server's round trip, few enough not to crowd out other clients.
const createWorkers = 16

// parallel calls f(0..n-1) on up to workers goroutines and waits for all.
func parallel(n, workers int, f func(i int)) {
	if n <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

func (s *Server) maxJobsPerRequest() int {
	if s.opts.MaxJobsPerRequest > 0 {
		return s.opts.MaxJobsPerRequest
	}
	return DefaultMaxJobsPerRequest
}

// parsedDescription is one description of a submission: the request, its own text, or why it failed.
type parsedDescription struct {
	req *JobRequest
	raw []byte
	err error
}

// parseDescriptions splits a submission body into its descriptions: ADL (one or <ActivityDescriptions>)
// or xRSL (& or +). Each description is parsed alone and keeps only its own text (diagnose/description);
// an error of the body as a whole (neither format, unbalanced) is returned as err.
func parseDescriptions(body []byte) ([]parsedDescription, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, descError("empty job description")
	}
	var out []parsedDescription
	switch trimmed[0] {
	case '<':
		parts, err := splitADL(trimmed)
		if err != nil {
			return nil, err
		}
		if len(parts) == 0 {
			return nil, descError("<ActivityDescriptions> holds no <ActivityDescription>")
		}
		for _, p := range parts {
			jr, err := ParseADL(p)
			out = append(out, parsedDescription{req: jr, raw: p, err: err})
		}
		return out, nil
	case '&', '+':
		texts, err := splitXRSLJobs(string(trimmed))
		if err != nil {
			return nil, err
		}
		for _, t := range texts {
			d := parsedDescription{raw: []byte(t)}
			reqs, err := ParseXRSL(t)
			switch {
			case err != nil:
				d.err = err
			case len(reqs) != 1:
				d.err = descError("xRSL: a job of a multi-job description is itself a multi-job description")
			default:
				d.req = reqs[0]
			}
			out = append(out, d)
		}
		return out, nil
	}
	return nil, descError("neither ADL (<ActivityDescription>) nor xRSL (&(...))")
}

// defaultQueue is the first queue the VO may use, as A-REX falls back to its default queue.
func (s *Server) defaultQueue(vo string) string {
	for _, q := range s.opts.Site.Queues {
		if q.Allows(vo) {
			return q.Name
		}
	}
	return ""
}

// create turns one request into a GridJob (and its control files). ARC has no client key: each request
// gets a fresh random one, so the core's idempotency never merges two ARC submissions.
func (s *Server) create(ctx context.Context, id *auth.Identity, jr *JobRequest, raw []byte) (*kubehtcv1alpha1.GridJob, error) {
	d := jr.Description
	if d.Queue == "" {
		d.Queue = s.defaultQueue(id.VO.Name)
	}
	var nonce [12]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, err
	}
	sub := jobs.Submission{
		ClientKey: "arc-" + hex.EncodeToString(nonce[:]), Description: d,
		Labels:           map[string]string{InterfaceLabel: InterfaceValue},
		Annotations:      map[string]string{translate.SessionInputsAnnotation: translate.SessionInputsReady},
		NoCredentialHint: "the job names no delegation",
	}
	if len(d.Inputs) > 0 {
		sub.Annotations[translate.SessionInputsAnnotation] = translate.SessionInputsPending
	}
	for k, v := range map[string]string{StdoutAnnotation: jr.Stdout, StderrAnnotation: jr.Stderr, LogDirAnnotation: jr.LogDir} {
		if v != "" {
			sub.Annotations[k] = v
		}
	}
	if jr.DelegationID != "" {
		sec, err := s.delegationSecret(ctx, id, jr.DelegationID)
		if err != nil {
			return nil, fmt.Errorf("delegation %s: %w", jr.DelegationID, err)
		}
		if len(sec.Data[translate.CredentialKey]) == 0 {
			return nil, fmt.Errorf("delegation %s has no credential yet (PUT the signed chain first)", jr.DelegationID)
		}
		sub.Annotations[DelegationAnnotation] = jr.DelegationID
		sub.CredentialSecret, sub.CredentialType = sec.Name, kubehtcv1alpha1.CredentialX509Proxy
	}
	// The control files first: a job that exists always has its description.
	var stored *session.JobKey
	sub.BeforeCreate = func(gj *kubehtcv1alpha1.GridJob) error {
		key := session.KeyOf(gj)
		if _, err := s.opts.Store.Put(key, session.AreaControl, "description", bytes.NewReader(raw), MaxDescriptionBytes); err != nil {
			return fmt.Errorf("session store: %w", err)
		}
		stored = &key
		s.logEvent(gj, "job accepted through ARC REST into queue %s", d.Queue)
		return nil
	}
	gj, _, err := s.core.Submit(ctx, id, sub)
	if err != nil {
		if stored != nil {
			_ = s.opts.Store.RemoveJob(*stored)
		}
		return nil, err
	}
	return gj, nil
}

// logEvent appends a line to the job's "errors" control file (A-REX's job log, diagnose/errors).
func (s *Server) logEvent(gj *kubehtcv1alpha1.GridJob, format string, args ...any) {
	session.LogEvent(s.opts.Store, s.now(), gj, format, args...)
}
