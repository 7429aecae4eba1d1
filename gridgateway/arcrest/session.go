package arcrest

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/gridgateway/auth"
	"github.com/kubehtc/kubehtc/gridgateway/session"
	"github.com/kubehtc/kubehtc/gridgateway/translate"
)

// session serves /jobs/<id>/session/<path>: GET/HEAD files and listings, PUT uploads (whole or
// Content-Range), PROPFIND (WebDAV, Depth 0 or 1) and DELETE.
func (s *Server) session(w http.ResponseWriter, r *http.Request, id *auth.Identity, jid, rel string) error {
	scope := auth.ScopeRead
	if r.Method == http.MethodPut || r.Method == http.MethodDelete {
		scope = auth.ScopeModify
	}
	if err := requireScope(id, scope); err != nil {
		return err
	}
	p, err := session.CleanPath(rel)
	if err != nil {
		return err
	}
	gj, err := s.getJob(r.Context(), id, jid)
	if err != nil {
		return err
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return s.sessionGet(w, r, gj, p)
	case http.MethodPut:
		return s.sessionPut(w, r, gj, p)
	case "PROPFIND":
		return s.propfind(w, r, gj, jid, p)
	case http.MethodDelete:
		if p == "" {
			return errorf(http.StatusBadRequest, "the session directory itself cannot be deleted; clean the job")
		}
		if err := s.opts.Store.Remove(session.KeyOf(gj), session.AreaSession, p); err != nil {
			return err
		}
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	return errorf(http.StatusMethodNotAllowed, "Method not allowed")
}

func (s *Server) sessionGet(w http.ResponseWriter, r *http.Request, gj *kubehtcv1alpha1.GridJob, p string) error {
	fi, err := s.opts.Store.Stat(session.KeyOf(gj), session.AreaSession, p)
	if session.IsNotExist(err) && p == "" {
		fi, err = session.FileInfo{Dir: true}, nil // a job with nothing uploaded yet has an empty session
	}
	if err != nil {
		return err
	}
	if fi.Dir {
		entries, err := s.opts.Store.List(session.KeyOf(gj), session.AreaSession, p)
		if err != nil && !(session.IsNotExist(err) && p == "") {
			return err
		}
		doc := el("list")
		for _, e := range entries {
			if e.Dir {
				doc.add(leaf("dir", e.Name))
				continue
			}
			f := leaf("file", e.Name)
			f.attrs = []xml.Attr{{Name: xml.Name{Local: "size"}, Value: strconv.FormatInt(e.Size, 10)}}
			doc.add(f)
		}
		respond(w, r, http.StatusOK, doc)
		return nil
	}
	f, err := s.opts.Store.Open(session.KeyOf(gj), session.AreaSession, p)
	if err != nil {
		return err
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, fi.Name, fi.Modified, f)
	return nil
}

// contentRange parses "bytes a-b/total" (total may be *).
var contentRange = regexp.MustCompile(`^bytes (\d+)-(\d+)/(\d+|\*)$`)

// sessionPut stores an upload. Uploads are accepted until the job's Pod exists; when the last declared
// input has arrived, the job is marked ready and the controller creates its Pod. The ARC client's
// "If-None-Match: *" is ignored on purpose (A-REX does not answer 412 either).
func (s *Server) sessionPut(w http.ResponseWriter, r *http.Request, gj *kubehtcv1alpha1.GridJob, p string) error {
	if p == "" {
		return errorf(http.StatusBadRequest, "PUT needs a file name")
	}
	if st := gj.Status.State; st != "" && st != kubehtcv1alpha1.StateAccepting {
		return errorf(http.StatusForbidden, "Operation is not allowed: job is %s, inputs can no longer change", restState(gj))
	}
	limit := s.opts.MaxUploadBytes
	if r.ContentLength > limit {
		return errorf(http.StatusRequestEntityTooLarge, "upload of %d bytes exceeds the limit of %d", r.ContentLength, limit)
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	complete := true
	if cr := r.Header.Get("Content-Range"); cr != "" {
		m := contentRange.FindStringSubmatch(cr)
		if m == nil {
			return errorf(http.StatusBadRequest, "malformed Content-Range %.80q", cr)
		}
		start, _ := strconv.ParseInt(m[1], 10, 64)
		end, _ := strconv.ParseInt(m[2], 10, 64)
		if end < start || end >= limit {
			return errorf(http.StatusRequestEntityTooLarge, "Content-Range %.80q beyond the limit of %d bytes", cr, limit)
		}
		size, err := s.opts.Store.WriteAt(session.KeyOf(gj), session.AreaSession, p, start, io.LimitReader(body, end-start+1), limit)
		if err != nil {
			return err
		}
		total, err := strconv.ParseInt(m[3], 10, 64)
		complete = err == nil && size >= total
	} else if _, err := s.opts.Store.Put(session.KeyOf(gj), session.AreaSession, p, body, limit); err != nil {
		return err
	}
	if complete && slices.Contains(gj.Spec.Description.Inputs, p) {
		if err := s.markInputs(background(r), gj); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// markInputs sets the job ready once every declared input is in its session directory.
func (s *Server) markInputs(ctx context.Context, gj *kubehtcv1alpha1.GridJob) error {
	if gj.Annotations[translate.SessionInputsAnnotation] == translate.SessionInputsReady {
		return nil
	}
	for _, in := range gj.Spec.Description.Inputs {
		if _, err := s.opts.Store.Stat(session.KeyOf(gj), session.AreaSession, in); err != nil {
			return nil // more to come
		}
	}
	// Re-read: several uploads may finish at once; a conflict means someone else marked it.
	var fresh kubehtcv1alpha1.GridJob
	if err := s.opts.Client.Get(ctx, types.NamespacedName{Namespace: gj.Namespace, Name: gj.Name}, &fresh); err != nil {
		return err
	}
	patch := client.MergeFrom(fresh.DeepCopy())
	if fresh.Annotations == nil {
		fresh.Annotations = map[string]string{}
	}
	fresh.Annotations[translate.SessionInputsAnnotation] = translate.SessionInputsReady
	if err := s.opts.Client.Patch(ctx, &fresh, patch); err != nil {
		return err
	}
	s.logEvent(gj, "all %d inputs uploaded", len(gj.Spec.Description.Inputs))
	klog.FromContext(ctx).V(2).Info("ARC job inputs complete", "gridjob", klog.KObj(gj))
	return nil
}

// davResponse is one <d:response> of a 207 multistatus.
type davResponse struct {
	href string
	fi   session.FileInfo
}

// propfind answers WebDAV PROPFIND on the session directory (arcget walks it with Depth 0, then 1).
func (s *Server) propfind(w http.ResponseWriter, r *http.Request, gj *kubehtcv1alpha1.GridJob, jid, p string) error {
	depth := r.Header.Get("Depth")
	if depth == "" {
		depth = "1"
	}
	if depth != "0" && depth != "1" {
		return errorf(http.StatusForbidden, "Depth %q is not supported (0 or 1)", depth)
	}
	_, _ = io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 64<<10)) // the requested properties: all are sent
	fi, err := s.opts.Store.Stat(session.KeyOf(gj), session.AreaSession, p)
	if session.IsNotExist(err) && p == "" {
		fi, err = session.FileInfo{Dir: true, Modified: gj.CreationTimestamp.Time}, nil
	}
	if err != nil {
		return err
	}
	base := APIPath + "/jobs/" + url.PathEscape(jid) + "/session"
	href := func(rel string, dir bool) string {
		h := base
		for _, seg := range strings.Split(rel, "/") {
			if seg != "" {
				h += "/" + url.PathEscape(seg)
			}
		}
		if dir {
			h += "/"
		}
		return h
	}
	if fi.Name == "" {
		fi.Name = path.Base("/" + p)
	}
	resps := []davResponse{{href: href(p, fi.Dir), fi: fi}}
	if fi.Dir && depth == "1" {
		entries, err := s.opts.Store.List(session.KeyOf(gj), session.AreaSession, p)
		if err != nil && !session.IsNotExist(err) {
			return err
		}
		for _, e := range entries {
			resps = append(resps, davResponse{href: href(path.Join(p, e.Name), e.Dir), fi: e})
		}
	}
	w.Header().Set("Content-Type", `application/xml; charset="utf-8"`)
	w.WriteHeader(http.StatusMultiStatus)
	var b strings.Builder
	b.WriteString(xml.Header + `<d:multistatus xmlns:d="DAV:">`)
	for _, rs := range resps {
		b.WriteString("<d:response><d:href>")
		_ = xml.EscapeText(&b, []byte(rs.href))
		b.WriteString("</d:href><d:propstat><d:prop><d:displayname>")
		_ = xml.EscapeText(&b, []byte(rs.fi.Name))
		b.WriteString("</d:displayname>")
		if rs.fi.Dir {
			b.WriteString("<d:resourcetype><d:collection/></d:resourcetype>")
		} else {
			fmt.Fprintf(&b, "<d:resourcetype/><d:getcontentlength>%d</d:getcontentlength>", rs.fi.Size)
		}
		if !rs.fi.Modified.IsZero() {
			fmt.Fprintf(&b, "<d:getlastmodified>%s</d:getlastmodified>", rs.fi.Modified.UTC().Format(http.TimeFormat))
		}
		b.WriteString("</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>")
	}
	b.WriteString("</d:multistatus>\n")
	_, err = io.WriteString(w, b.String())
	return err
}

// diagnose serves /jobs/<id>/diagnose/<file>: the grid-manager files A-REX exposes, from the GridJob and
// the control area of the store.
func (s *Server) diagnose(w http.ResponseWriter, r *http.Request, id *auth.Identity, jid, file string) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return errorf(http.StatusMethodNotAllowed, "Method not allowed")
	}
	gj, err := s.getJob(r.Context(), id, jid)
	if err != nil {
		return err
	}
	var text string
	switch file {
	case "errors", "description":
		f, err := s.opts.Store.Open(session.KeyOf(gj), session.AreaControl, file)
		if session.IsNotExist(err) {
			err = nil
		} else if err == nil {
			defer f.Close()
			w.Header().Set("Content-Type", "text/plain")
			_, err = io.Copy(w, f)
			return err
		}
		if err != nil {
			return err
		}
	case "status":
		text = string(restState(gj)) + "\n"
	case "failed":
		if gj.Status.State != kubehtcv1alpha1.StateFailed {
			return errorf(http.StatusNotFound, "Not Found")
		}
		text = gj.Status.FailureReason + ": " + gj.Status.Message + "\n"
	case "local":
		text = fmt.Sprintf("localid=%s\nqueue=%s\nsubject=%s\nnamespace=%s\ngridjob=%s\n", gj.Status.PodName, gj.Spec.Queue,
			gj.Spec.Owner.DN+gj.Spec.Owner.Subject, gj.Namespace, gj.Name)
	case "diag":
		var b strings.Builder
		if gj.Status.Node != "" {
			fmt.Fprintf(&b, "nodename=%s\n", gj.Status.Node)
		}
		if gj.Status.ExitCode != nil {
			fmt.Fprintf(&b, "exitcode=%d\n", *gj.Status.ExitCode)
		}
		if gj.Status.StartTime != nil {
			end := s.now()
			if gj.Status.EndTime != nil {
				end = gj.Status.EndTime.Time
			}
			fmt.Fprintf(&b, "WallTime=%ds\n", int64(end.Sub(gj.Status.StartTime.Time)/time.Second))
		}
		fmt.Fprintf(&b, "Processors=%d\n", gj.Spec.Description.Cores)
		text = b.String()
	default:
		return errorf(http.StatusNotFound, "Not Found")
	}
	w.Header().Set("Content-Type", "text/plain")
	_, err = io.WriteString(w, text)
	return err
}
