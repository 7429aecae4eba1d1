package arcrest

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"strconv"
	"strings"
)

// adlActivity is the part of an EMI-ES ActivityDescription (namespace http://www.eu-emi.eu/es/2010/12/adl,
// with NorduGrid extensions) the gateway understands. Element names match in any namespace.
type adlActivity struct {
	XMLName        xml.Name `xml:"ActivityDescription"`
	Identification struct {
		Name string `xml:"Name"`
	} `xml:"ActivityIdentification"`
	Application struct {
		Executable struct {
			Path     string   `xml:"Path"`
			Argument []string `xml:"Argument"`
		} `xml:"Executable"`
		Output      string `xml:"Output"`
		Error       string `xml:"Error"`
		Environment []struct {
			Name  string `xml:"Name"`
			Value string `xml:"Value"`
		} `xml:"Environment"`
		LoggingDirectory string `xml:"LoggingDirectory"`
	} `xml:"Application"`
	Resources struct {
		QueueName                string `xml:"QueueName"`
		IndividualPhysicalMemory string `xml:"IndividualPhysicalMemory"`
		DiskSpaceRequirement     string `xml:"DiskSpaceRequirement"`
		WallTime                 string `xml:"WallTime"`
		TotalCPUTime             string `xml:"TotalCPUTime"`
		SlotRequirement          struct {
			NumberOfSlots string `xml:"NumberOfSlots"`
			SlotsPerHost  string `xml:"SlotsPerHost"`
		} `xml:"SlotRequirement"`
		RuntimeEnvironment []struct {
			Name    string `xml:"Name"`
			Version string `xml:"Version"`
		} `xml:"RuntimeEnvironment"`
	} `xml:"Resources"`
	DataStaging struct {
		DelegationID []string `xml:"DelegationID"`
		InputFile    []struct {
			Name   string `xml:"Name"`
			Source []struct {
				URI string `xml:"URI"`
			} `xml:"Source"`
		} `xml:"InputFile"`
		OutputFile []struct {
			Name   string `xml:"Name"`
			Target []struct {
				URI string `xml:"URI"`
			} `xml:"Target"`
		} `xml:"OutputFile"`
	} `xml:"DataStaging"`
}

// splitADL returns the ActivityDescription elements of a body: one, or several wrapped in
// <ActivityDescriptions>.
func splitADL(body []byte) ([][]byte, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.Strict = true
	var out [][]byte
	depth := 0
	root := ""
	start := int64(-1)
	for {
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, descError("ADL is not well-formed XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 1:
				root = t.Name.Local
				if root == "ActivityDescription" {
					start = off
				} else if root != "ActivityDescriptions" {
					return nil, descError("ADL root element is <%s>, want <ActivityDescription> or <ActivityDescriptions>", root)
				}
			case depth == 2 && root == "ActivityDescriptions":
				if t.Name.Local != "ActivityDescription" {
					return nil, descError("<ActivityDescriptions> holds <%s>, want <ActivityDescription>", t.Name.Local)
				}
				start = off
			}
		case xml.EndElement:
			depth--
			if (depth == 0 && root == "ActivityDescription") || (depth == 1 && root == "ActivityDescriptions" && start >= 0) {
				// Keep the namespace declarations of the wrapper: re-parse the element inside a copy of it.
				out = append(out, body[start:dec.InputOffset()])
				start = -1
			}
		}
	}
	if root == "" {
		return nil, descError("empty ADL document")
	}
	return out, nil
}

// ParseADL parses one ADL ActivityDescription. Units: IndividualPhysicalMemory is bytes per slot,
// DiskSpaceRequirement bytes, WallTime and TotalCPUTime seconds.
func ParseADL(body []byte) (*JobRequest, error) {
	var a adlActivity
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.Strict = true
	// Namespace prefixes declared on an <ActivityDescriptions> wrapper are unknown here; element names
	// match by local name, so an undeclared prefix does no harm.
	dec.DefaultSpace = ""
	if err := dec.Decode(&a); err != nil {
		return nil, descError("ADL: %v", err)
	}
	jr := &JobRequest{}
	d := &jr.Description
	d.Name = strings.TrimSpace(a.Identification.Name)
	d.Queue = strings.TrimSpace(a.Resources.QueueName)
	d.Executable = executable(strings.TrimSpace(a.Application.Executable.Path))
	d.Arguments = a.Application.Executable.Argument
	for _, e := range a.Application.Environment {
		if d.Environment == nil {
			d.Environment = map[string]string{}
		}
		d.Environment[strings.TrimSpace(e.Name)] = e.Value
	}
	for _, r := range a.Resources.RuntimeEnvironment {
		name := strings.TrimSpace(r.Name)
		if v := strings.TrimSpace(r.Version); v != "" {
			name += "-" + v
		}
		d.RuntimeEnvironments = append(d.RuntimeEnvironments, name)
	}
	slots, err := adlInt("NumberOfSlots", a.Resources.SlotRequirement.NumberOfSlots, 1, math.MaxInt32)
	if err != nil {
		return nil, err
	}
	perHost, err := adlInt("SlotsPerHost", a.Resources.SlotRequirement.SlotsPerHost, 1, math.MaxInt32)
	if err != nil {
		return nil, err
	}
	if slots == 0 {
		slots = max(perHost, 1)
	}
	if perHost != 0 && perHost < slots {
		return nil, descError("SlotsPerHost %d < NumberOfSlots %d: multi-node jobs are not supported", perHost, slots)
	}
	d.Cores = int32(slots)
	mem, err := adlInt("IndividualPhysicalMemory", a.Resources.IndividualPhysicalMemory, 1, math.MaxInt64/1024)
	if err != nil {
		return nil, err
	}
	if mem > 0 {
		if mem > (math.MaxInt64>>1)/slots {
			return nil, descError("IndividualPhysicalMemory %d bytes times %d slots is too large", mem, slots)
		}
		d.MemoryMiB = bytesToMiB(mem * slots)
	}
	disk, err := adlInt("DiskSpaceRequirement", a.Resources.DiskSpaceRequirement, 1, math.MaxInt64/2)
	if err != nil {
		return nil, err
	}
	d.DiskMiB = bytesToMiB(disk)
	wall, err := adlInt("WallTime", a.Resources.WallTime, 1, math.MaxInt32)
	if err != nil {
		return nil, err
	}
	if wall == 0 {
		cpu, err := adlInt("TotalCPUTime", a.Resources.TotalCPUTime, 1, math.MaxInt32)
		if err != nil {
			return nil, err
		}
		wall = ceilDiv(cpu, slots) // the CPU time of all slots spread over them
	}
	d.WallTimeSeconds = wall

	if jr.Stdout, err = sessionFile("Output", strings.TrimSpace(a.Application.Output)); err != nil {
		return nil, err
	}
	if jr.Stderr, err = sessionFile("Error", strings.TrimSpace(a.Application.Error)); err != nil {
		return nil, err
	}
	if jr.LogDir, err = sessionFile("LoggingDirectory", strings.TrimSpace(a.Application.LoggingDirectory)); err != nil {
		return nil, err
	}
	for _, id := range a.DataStaging.DelegationID {
		if id = strings.TrimSpace(id); id != "" {
			jr.DelegationID = id
		}
	}
	for _, in := range a.DataStaging.InputFile {
		src := ""
		for _, s := range in.Source {
			if u := strings.TrimSpace(s.URI); u != "" {
				src = u
			}
		}
		if err := jr.addInput(strings.TrimSpace(in.Name), src); err != nil {
			return nil, err
		}
	}
	for _, out := range a.DataStaging.OutputFile {
		for _, t := range out.Target {
			if remoteURL(t.URI) {
				return nil, descError("output file %.80q: remote target %.120q: this gateway keeps outputs in the session directory only", out.Name, t.URI)
			}
		}
		if err := jr.addOutput(strings.TrimSpace(out.Name)); err != nil {
			return nil, err
		}
	}
	return jr.finish(), nil
}

func adlInt(what, s string, lo, hi int64) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < lo || v > hi {
		return 0, descError("%s %.40q: want an integer between %d and %d", what, s, lo, hi)
	}
	return v, nil
}
