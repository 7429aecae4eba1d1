package arcrest

import (
	"encoding/xml"
	"net/http"
	"net/url"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/gridgateway/auth"
)

// glue2NS is the GLUE 2.0 XML namespace.
const glue2NS = "http://schemas.ogf.org/glue/2009/03/spec_2.0_r1"

// infoTTL is how long the cluster capacity behind the info document is reused.
const infoTTL = 30 * time.Second

// capacity is what the info document says about the cluster.
type capacity struct {
	totalSlots, usedSlots int64
	running, waiting      int64
	workFreeGB, workGB    int64
}

// StoreSpace is implemented by stores that know their free space (FileStore); the info document
// publishes it as WorkingAreaFree/WorkingAreaTotal.
type StoreSpace interface {
	Space() (total, free int64, err error)
}

func glueTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// capacityNow counts CPU slots (allocatable cores of schedulable nodes, and those requested by running
// Pods) and the grid jobs, at most once per infoTTL.
func (s *Server) capacityNow(r *http.Request) *capacity {
	s.infoMu.Lock()
	defer s.infoMu.Unlock()
	if s.infoCached != nil && s.now().Sub(s.infoAt) < infoTTL {
		return s.infoCached
	}
	c := &capacity{}
	ctx := r.Context()
	var nodes corev1.NodeList
	if err := s.opts.Client.List(ctx, &nodes); err == nil {
		for _, n := range nodes.Items {
			if n.Spec.Unschedulable {
				continue
			}
			c.totalSlots += n.Status.Allocatable.Cpu().Value()
		}
	}
	var pods corev1.PodList
	if err := s.opts.Client.List(ctx, &pods, client.MatchingFields{"status.phase": string(corev1.PodRunning)}); err == nil {
		for _, p := range pods.Items {
			for _, ct := range p.Spec.Containers {
				c.usedSlots += ct.Resources.Requests.Cpu().Value()
			}
		}
	}
	for _, vo := range s.opts.Site.VOs {
		var jobs kubehtcv1alpha1.GridJobList
		if err := s.opts.Client.List(ctx, &jobs, client.InNamespace(vo.Namespace), client.MatchingLabels{InterfaceLabel: InterfaceValue}); err != nil {
			continue
		}
		for _, gj := range jobs.Items {
			switch gj.Status.State {
			case kubehtcv1alpha1.StateRunning:
				c.running++
			case "", kubehtcv1alpha1.StateAccepting, kubehtcv1alpha1.StateSubmitting, kubehtcv1alpha1.StateQueuing:
				c.waiting++
			}
		}
	}
	if sp, ok := s.opts.Store.(StoreSpace); ok {
		if total, free, err := sp.Space(); err == nil {
			c.workGB, c.workFreeGB = total>>30, free>>30
		}
	}
	s.infoCached, s.infoAt = c, s.now()
	return c
}

// info answers GET /info: the GLUE2 document ARC clients broker on (../shared/reference/arc-rest.md §5.3).
func (s *Server) info(w http.ResponseWriter, r *http.Request, id *auth.Identity) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return errorf(http.StatusMethodNotAllowed, "Method not allowed")
	}
	_ = id // any authenticated caller may read the information
	respond(w, r, http.StatusOK, s.glue2(r))
	return nil
}

func (s *Server) glue2(r *http.Request) *node {
	c := s.capacityNow(r)
	base := s.publicURL(r)
	host := base
	if u, err := url.Parse(base); err == nil {
		host = u.Hostname()
	}
	svcID := "urn:ogf:ComputingService:" + host + ":arex"
	itoa := func(v int64) string { return strconv.FormatInt(v, 10) }
	free := max(c.totalSlots-c.usedSlots, 0)

	endpoint := el("ComputingEndpoint",
		leaf("ID", "urn:ogf:ComputingEndpoint:"+host+":rest:"+base),
		leaf("URL", base),
		leaf("Capability", "executionmanagement.jobcreation"),
		leaf("Capability", "executionmanagement.jobdescription"),
		leaf("Capability", "executionmanagement.jobmanagement"),
		leaf("Capability", "information.discovery.resource"),
		leaf("Capability", "information.lookup.job"),
		leaf("Capability", "security.delegation"),
		leaf("Technology", "rest"),
		leaf("InterfaceName", InterfaceName),
		leaf("InterfaceVersion", Version),
		leaf("QualityLevel", "production"),
		leaf("HealthState", "ok"),
		leaf("ServingState", "production"),
		leaf("ImplementationName", "kubehtc"),
		leaf("Staging", "staginginout"),
		leaf("JobDescription", "emies:adl"),
		leaf("JobDescription", "nordugrid:xrsl"),
		leaf("TotalJobs", itoa(c.running+c.waiting)),
		leaf("RunningJobs", itoa(c.running)),
		leaf("WaitingJobs", itoa(c.waiting)),
	)
	svc := el("ComputingService",
		leaf("ID", svcID),
		leaf("Name", s.opts.ServiceName),
		leaf("Capability", "executionmanagement.jobexecution"),
		leaf("Type", "org.nordugrid.arex"),
		leaf("QualityLevel", "production"),
		leaf("TotalJobs", itoa(c.running+c.waiting)),
		leaf("RunningJobs", itoa(c.running)),
		leaf("WaitingJobs", itoa(c.waiting)),
		endpoint,
	)
	for i := range s.opts.Site.Queues {
		q := &s.opts.Site.Queues[i]
		lim := s.opts.Site.EffectiveLimits(q)
		share := el("ComputingShare",
			leaf("ID", "urn:ogf:ComputingShare:"+host+":"+q.Name),
			leaf("Name", q.Name),
			leaf("MappingQueue", q.Name),
			leaf("MaxWallTime", itoa(lim.MaxWallTimeSeconds)),
			leaf("MaxCPUTime", itoa(lim.MaxWallTimeSeconds*int64(lim.MaxCores))),
			leaf("MaxTotalWallTime", itoa(lim.MaxWallTimeSeconds)),
			leaf("MaxSlotsPerJob", itoa(int64(lim.MaxCores))),
			leaf("MaxMainMemory", itoa(lim.MaxMemoryMiB)),
			leaf("MaxVirtualMemory", itoa(lim.MaxMemoryMiB)),
			leaf("MaxDiskSpace", itoa(lim.MaxDiskMiB>>10)),
			leaf("ServingState", "production"),
			leaf("FreeSlots", itoa(free)),
			leaf("UsedSlots", itoa(c.usedSlots)),
		)
		if q.DefaultWallTimeSeconds > 0 {
			share.add(leaf("DefaultWallTime", itoa(q.DefaultWallTimeSeconds)))
		}
		svc.add(share)
	}
	apps := el("ApplicationEnvironments")
	for _, rte := range s.opts.Site.RuntimeEnvironments {
		apps.add(el("ApplicationEnvironment",
			leaf("ID", "urn:ogf:ApplicationEnvironment:"+host+":rte:"+rte.Name),
			leaf("AppName", rte.Name),
			leaf("State", "installednotverified")))
	}
	svc.add(el("ComputingManager",
		leaf("ID", "urn:ogf:ComputingManager:"+host+":kubernetes"),
		leaf("ProductName", "kubernetes"),
		leaf("Reservation", "false"),
		leaf("BulkSubmission", "false"),
		leaf("TotalPhysicalCPUs", itoa(c.totalSlots)),
		leaf("TotalLogicalCPUs", itoa(c.totalSlots)),
		leaf("TotalSlots", itoa(c.totalSlots)),
		leaf("SlotsUsedByGridJobs", itoa(c.usedSlots)),
		leaf("Homogeneous", "false"),
		leaf("WorkingAreaShared", "true"),
		leaf("WorkingAreaTotal", itoa(c.workGB)),
		leaf("WorkingAreaFree", itoa(c.workFreeGB)),
		leaf("WorkingAreaLifeTime", itoa(int64(s.opts.SessionLifetime/time.Second))),
		apps,
		el("ExecutionEnvironments", el("ExecutionEnvironment",
			leaf("ID", "urn:ogf:ExecutionEnvironment:"+host+":nodes"),
			leaf("Platform", "amd64"),
			leaf("OSFamily", "linux"),
			leaf("OSName", "kubernetes"),
			leaf("ConnectivityIn", "false"),
			leaf("ConnectivityOut", "true"))),
	))
	domains := el("Domains", el("AdminDomain",
		leaf("ID", "urn:ad:"+host),
		leaf("Name", host),
		el("Services", svc)))
	domains.attrs = []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: glue2NS}}
	// A-REX wraps the document in InfoRoot; the ARC client looks for the Domains element below the root
	// (and JSON clients, without the root, at "Domains").
	return el("InfoRoot", domains)
}

// activityStates are the EMI-ES and classic NorduGrid names of each REST state, published beside the
// arcrest: one.
var activityStates = map[kubehtcv1alpha1.GridJobState][2]string{
	kubehtcv1alpha1.StateAccepting:   {"emies:accepted", "nordugrid:ACCEPTED"},
	kubehtcv1alpha1.StateAccepted:    {"emies:accepted", "nordugrid:ACCEPTED"},
	kubehtcv1alpha1.StatePreparing:   {"emies:preprocessing", "nordugrid:PREPARING"},
	kubehtcv1alpha1.StatePrepared:    {"emies:preprocessing", "nordugrid:PREPARING"},
	kubehtcv1alpha1.StateSubmitting:  {"emies:processing-accepting", "nordugrid:SUBMIT"},
	kubehtcv1alpha1.StateQueuing:     {"emies:processing-queued", "nordugrid:INLRMS:Q"},
	kubehtcv1alpha1.StateRunning:     {"emies:processing-running", "nordugrid:INLRMS:R"},
	kubehtcv1alpha1.StateHeld:        {"emies:processing-queued", "nordugrid:INLRMS:S"},
	kubehtcv1alpha1.StateExitingLRMS: {"emies:processing-running", "nordugrid:INLRMS:E"},
	kubehtcv1alpha1.StateOther:       {"emies:processing-running", "nordugrid:INLRMS:O"},
	kubehtcv1alpha1.StateExecuted:    {"emies:processing-running", "nordugrid:INLRMS:E"},
	kubehtcv1alpha1.StateFinishing:   {"emies:postprocessing", "nordugrid:FINISHING"},
	kubehtcv1alpha1.StateFinished:    {"emies:terminal", "nordugrid:FINISHED"},
	kubehtcv1alpha1.StateFailed:      {"emies:terminal", "nordugrid:FAILED"},
	kubehtcv1alpha1.StateKilling:     {"emies:processing-running", "nordugrid:KILLING"},
	kubehtcv1alpha1.StateKilled:      {"emies:terminal", "nordugrid:KILLED"},
	kubehtcv1alpha1.StateWiped:       {"emies:terminal", "nordugrid:DELETED"},
}

// activity is the GLUE2 ComputingActivity of a job (action=info): the fields arcstat prints and aCT
// parses.
func (s *Server) activity(r *http.Request, gj *kubehtcv1alpha1.GridJob) *node {
	st := restState(gj)
	d := &gj.Spec.Description
	base := s.publicURL(r)
	a := el("ComputingActivity",
		leaf("ID", base+APIPath[len(BasePath):]+"/jobs/"+jobID(gj)),
		leaf("IDFromEndpoint", jobID(gj)),
		leaf("Type", "single"),
	)
	a.addText("Name", d.Name)
	a.add(leaf("State", "arcrest:"+string(st)))
	if other, ok := activityStates[st]; ok {
		a.add(leaf("State", other[0]), leaf("State", other[1]))
	}
	if gj.Status.ExitCode != nil {
		a.add(leaf("ExitCode", strconv.Itoa(int(*gj.Status.ExitCode))))
	}
	if gj.Status.State == kubehtcv1alpha1.StateFailed || gj.Status.State == kubehtcv1alpha1.StateKilled {
		msg := gj.Status.FailureReason
		if gj.Status.Message != "" {
			msg += ": " + gj.Status.Message
		}
		a.addText("Error", msg)
	}
	owner := gj.Spec.Owner.DN
	if owner == "" {
		owner = gj.Spec.Owner.Issuer + " " + gj.Spec.Owner.Subject
	}
	a.add(leaf("Owner", owner), leaf("LocalOwner", gj.Namespace))
	a.addText("LocalIDFromManager", gj.Status.PodName)
	a.addText("ExecutionNode", gj.Status.Node)
	a.add(leaf("Queue", gj.Spec.Queue),
		leaf("RequestedSlots", strconv.Itoa(int(d.Cores))),
		leaf("RequestedTotalWallTime", strconv.FormatInt(d.WallTimeSeconds*int64(d.Cores), 10)),
		leaf("RequestedTotalCPUTime", strconv.FormatInt(d.WallTimeSeconds*int64(d.Cores), 10)))
	for _, rte := range d.RuntimeEnvironments {
		a.add(leaf("RequestedApplicationEnvironment", rte))
	}
	a.addText("StdOut", gj.Annotations[StdoutAnnotation])
	a.addText("StdErr", gj.Annotations[StderrAnnotation])
	a.addText("LogDir", gj.Annotations[LogDirAnnotation])
	submitted := gj.CreationTimestamp.Time
	if gj.Status.SubmitTime != nil {
		submitted = gj.Status.SubmitTime.Time
	}
	a.add(leaf("SubmissionTime", glueTime(submitted)))
	if gj.Status.StartTime != nil {
		a.add(leaf("StartTime", glueTime(gj.Status.StartTime.Time)))
		end := s.now()
		if gj.Status.EndTime != nil {
			end = gj.Status.EndTime.Time
		}
		used := int64(end.Sub(gj.Status.StartTime.Time) / time.Second)
		a.add(leaf("UsedTotalWallTime", strconv.FormatInt(used*int64(d.Cores), 10)))
	}
	if gj.Status.EndTime != nil {
		a.add(leaf("EndTime", glueTime(gj.Status.EndTime.Time)),
			leaf("ComputingManagerEndTime", glueTime(gj.Status.EndTime.Time)),
			leaf("WorkingAreaEraseTime", glueTime(gj.Status.EndTime.Add(s.opts.SessionLifetime))))
	}
	if exp := s.proxyExpiration(r, gj); !exp.IsZero() {
		// GLUE2 ComputingActivity ProxyExpirationTime: when the job's delegated proxy expires (what aCT
		// renews before; A-REX publishes it the same way).
		a.add(leaf("ProxyExpirationTime", glueTime(exp)))
	}
	if did := gj.Annotations[DelegationAnnotation]; did != "" {
		a.add(el("Associations", leaf("DelegationID", did)))
	}
	return a
}

// proxyExpiration is the expiry of the proxy the job runs with: its delegation's (the Secret's
// annotation, set when the chain arrives), else the job's own credential's when it is an X.509 proxy
// stored with the same annotation; zero when unknown.
func (s *Server) proxyExpiration(r *http.Request, gj *kubehtcv1alpha1.GridJob) time.Time {
	name := ""
	if did := gj.Annotations[DelegationAnnotation]; did != "" {
		name = delegationSecretName(did)
	} else if gj.Spec.CredentialType == kubehtcv1alpha1.CredentialX509Proxy {
		name = gj.Spec.CredentialSecretName
	}
	if name == "" {
		return time.Time{}
	}
	var sec corev1.Secret
	if err := s.opts.Client.Get(r.Context(), types.NamespacedName{Namespace: gj.Namespace, Name: name}, &sec); err != nil {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, sec.Annotations[DelegationExpiresAnnotation])
	if err != nil {
		return time.Time{}
	}
	return t
}
