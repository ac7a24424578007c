// Package cfnemu is a CloudFormation emulator for the one call the provisioner makes to tell a
// real custom-resource request from a forged one: DescribeStackResource.
//
// It speaks CloudFormation's awsQuery protocol as the service does: POST / with a form body
// (Action, Version=2010-05-15, StackName, LogicalResourceId), signed with AWS Signature
// Version 4 for service "cloudformation" (checked: an unknown key or a wrong signature is
// refused as AWS refuses it), and an XML answer in the 2010-05-15 namespace. Errors are
// <ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code>… with HTTP 400, as
// for a stack or resource that does not exist. StackName may be the stack's name or its id.
//
// Tests and the local cloud set what CloudFormation knows with PutResource: the resource type,
// physical id and status (CREATE_IN_PROGRESS, UPDATE_IN_PROGRESS, DELETE_IN_PROGRESS,
// CREATE_COMPLETE, …) — the local cloud moves a resource to the in-progress state of a request
// before it invokes the provisioner and to the matching complete or failed state after the
// answer, as the real service does.
package cfnemu

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/emukit"
)

// Namespace is the XML namespace of CloudFormation's 2010-05-15 API.
const Namespace = "http://cloudformation.amazonaws.com/doc/2010-05-15/"

// Resource is what CloudFormation knows of one stack resource.
type Resource struct {
	StackID, LogicalID, PhysicalID, Type, Status string
	Updated                                      time.Time
}

// Options configure a Server.
type Options struct {
	// Region is the Region the emulator answers for (the credential scope's Region).
	Region string
	// Credentials maps access key ids to secret keys that may call it.
	Credentials map[string]string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is the emulator; it implements http.Handler.
type Server struct {
	emukit.Recorder
	opts Options

	mu        sync.Mutex
	resources map[string]*Resource // stackID + "|" + logicalID
	names     map[string]string    // stack name -> stack id
	stacks    map[string]string    // stack id -> stack status
}

// New returns an empty emulator.
func New(opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Server{opts: opts, resources: map[string]*Resource{}, names: map[string]string{}, stacks: map[string]string{}}
}

// StackName returns the name part of a stack id (arn:…:stack/<name>/<uuid>).
func StackName(stackID string) string {
	_, rest, ok := strings.Cut(stackID, ":stack/")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, "/")
	return name
}

// PutResource records (or replaces) what CloudFormation knows of one resource.
func (s *Server) PutResource(r Resource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Updated.IsZero() {
		r.Updated = s.opts.Now().UTC()
	}
	s.resources[r.StackID+"|"+r.LogicalID] = &r
	s.names[StackName(r.StackID)] = r.StackID
	if _, ok := s.stacks[r.StackID]; !ok {
		s.stacks[r.StackID] = "CREATE_IN_PROGRESS"
	}
}

// SetStackStatus sets the status DescribeStacks answers for a stack (default, for a stack
// PutResource created: CREATE_IN_PROGRESS).
func (s *Server) SetStackStatus(stackID, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stacks[stackID] = status
	s.names[StackName(stackID)] = stackID
}

// SetStatus moves a known resource to status (and to physicalID when it is not empty). It
// reports whether the resource was known.
func (s *Server) SetStatus(stackID, logicalID, status, physicalID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.resources[stackID+"|"+logicalID]
	if !ok {
		return false
	}
	r.Status, r.Updated = status, s.opts.Now().UTC()
	if physicalID != "" {
		r.PhysicalID = physicalID
	}
	return true
}

// Begin shows a resource in the state CloudFormation shows while it waits for the answer to a
// request of requestType: CREATE_IN_PROGRESS, UPDATE_IN_PROGRESS or DELETE_IN_PROGRESS, the
// stack likewise. A Delete of a physical id that is no longer the resource's own (the old one of
// a replacement) leaves the resource as it is and puts the stack in
// UPDATE_COMPLETE_CLEANUP_IN_PROGRESS, as CloudFormation's cleanup phase does. A Delete of a
// resource with no physical id yet (a Create that never answered) shows the id the Delete
// carries, as CloudFormation invents one then.
func (s *Server) Begin(stackID, logicalID, resourceType, requestType, physicalID string) {
	status := map[string]string{"Create": "CREATE_IN_PROGRESS", "Update": "UPDATE_IN_PROGRESS", "Delete": "DELETE_IN_PROGRESS"}[requestType]
	cur, known := s.Resource(stackID, logicalID)
	switch {
	case requestType == "Create" || !known:
		s.PutResource(Resource{StackID: stackID, LogicalID: logicalID, Type: resourceType, Status: status, PhysicalID: physicalID})
		s.SetStackStatus(stackID, status)
	case requestType == "Update":
		s.SetStatus(stackID, logicalID, status, "")
		s.SetStackStatus(stackID, status)
	case cur.PhysicalID == "" || cur.PhysicalID == physicalID:
		s.SetStatus(stackID, logicalID, status, physicalID)
		s.SetStackStatus(stackID, status)
	default:
		s.SetStackStatus(stackID, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
	}
}

// End records the answer to a request as CloudFormation does: the physical id the answer
// carried and a COMPLETE or FAILED state (a replacement's cleanup Delete only ends the cleanup
// phase).
func (s *Server) End(stackID, logicalID, requestType, physicalID string, success bool, answeredID string) {
	cur, _ := s.Resource(stackID, logicalID)
	switch {
	case requestType == "Delete" && cur.PhysicalID != "" && cur.PhysicalID != physicalID:
		s.SetStackStatus(stackID, "UPDATE_COMPLETE")
	case requestType == "Delete" && success:
		s.SetStatus(stackID, logicalID, "DELETE_COMPLETE", "")
		s.SetStackStatus(stackID, "DELETE_COMPLETE")
	default:
		state := map[string]string{"Create": "CREATE_", "Update": "UPDATE_", "Delete": "DELETE_"}[requestType]
		if success {
			state += "COMPLETE"
		} else {
			state += "FAILED"
		}
		s.SetStatus(stackID, logicalID, state, answeredID)
		s.SetStackStatus(stackID, state)
	}
}

// Resource returns what CloudFormation knows of a resource.
func (s *Server) Resource(stackID, logicalID string) (Resource, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.resources[stackID+"|"+logicalID]
	if !ok {
		return Resource{}, false
	}
	return *r, true
}

// apiError is one awsQuery error answer.
type apiError struct {
	status          int
	typ, code, mesg string
}

func validation(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "Sender", "ValidationError", fmt.Sprintf(format, args...)}
}

// ServeHTTP answers one awsQuery request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.Record(w, r, emukit.AuthScheme(r), func(w http.ResponseWriter, r *http.Request) { s.serve(w, r) })
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) int {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		return writeError(w, &apiError{http.StatusNotFound, "Sender", "UnknownOperation", "CloudFormation's query API is POST /"})
	}
	body, err := emukit.ReadBody(r, 1<<20)
	if err != nil {
		return writeError(w, validation("reading the request: %v", err))
	}
	if _, err := emukit.VerifySigV4(r, body, s.opts.Credentials, "cloudformation", s.opts.Region); err != nil {
		e := err.(*emukit.SigV4Error)
		return writeError(w, &apiError{http.StatusForbidden, "Sender", e.Code, e.Message})
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return writeError(w, validation("Content-Type must be application/x-www-form-urlencoded, got %q", ct))
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return writeError(w, validation("the request body is not a form: %v", err))
	}
	if v := form.Get("Version"); v != "2010-05-15" {
		return writeError(w, &apiError{http.StatusBadRequest, "Sender", "InvalidAction", fmt.Sprintf("Version %q is not 2010-05-15", v)})
	}
	switch a := form.Get("Action"); a {
	case "DescribeStackResource":
		return s.describeStackResource(w, form)
	case "DescribeStacks":
		return s.describeStacks(w, form)
	default:
		return writeError(w, &apiError{http.StatusBadRequest, "Sender", "InvalidAction", fmt.Sprintf("The action %s is not valid for this web service.", a)})
	}
}

func (s *Server) describeStackResource(w http.ResponseWriter, form url.Values) int {
	stack, logical := form.Get("StackName"), form.Get("LogicalResourceId")
	var missing []string
	if stack == "" {
		missing = append(missing, "'stackName' failed to satisfy constraint: Member must not be null")
	}
	if logical == "" {
		missing = append(missing, "'logicalResourceId' failed to satisfy constraint: Member must not be null")
	}
	if len(missing) > 0 {
		return writeError(w, validation("%d validation error(s) detected: Value null at %s", len(missing), strings.Join(missing, "; ")))
	}
	s.mu.Lock()
	id := stack
	if !strings.HasPrefix(stack, "arn:") {
		id = s.names[stack]
	}
	var res *Resource
	known := false
	for k, r := range s.resources {
		if strings.HasPrefix(k, id+"|") {
			known = true
			if r.LogicalID == logical {
				c := *r
				res = &c
			}
		}
	}
	s.mu.Unlock()
	if !known || id == "" {
		return writeError(w, validation("Stack '%s' does not exist", stack))
	}
	if res == nil {
		return writeError(w, validation("Resource %s does not exist for stack %s", logical, StackName(id)))
	}
	type detail struct {
		StackID              string `xml:"StackId"`
		StackName            string `xml:"StackName"`
		LogicalResourceID    string `xml:"LogicalResourceId"`
		PhysicalResourceID   string `xml:"PhysicalResourceId,omitempty"`
		ResourceType         string `xml:"ResourceType"`
		LastUpdatedTimestamp string `xml:"LastUpdatedTimestamp"`
		ResourceStatus       string `xml:"ResourceStatus"`
	}
	type answer struct {
		XMLName xml.Name `xml:"DescribeStackResourceResponse"`
		Xmlns   string   `xml:"xmlns,attr"`
		Detail  detail   `xml:"DescribeStackResourceResult>StackResourceDetail"`
		ReqID   string   `xml:"ResponseMetadata>RequestId"`
	}
	out, _ := xml.Marshal(answer{Xmlns: Namespace, ReqID: emukit.RandHex(16), Detail: detail{
		StackID: res.StackID, StackName: StackName(res.StackID), LogicalResourceID: res.LogicalID, PhysicalResourceID: res.PhysicalID,
		ResourceType: res.Type, LastUpdatedTimestamp: res.Updated.Format("2006-01-02T15:04:05.000Z"), ResourceStatus: res.Status,
	}})
	w.Header().Set("Content-Type", "text/xml")
	_, _ = w.Write(append([]byte(xml.Header), out...))
	return http.StatusOK
}

// describeStacks answers for one named stack (the only form the provisioner uses): StackName is
// required here, though the real API lists every stack without it.
func (s *Server) describeStacks(w http.ResponseWriter, form url.Values) int {
	stack := form.Get("StackName")
	if stack == "" {
		return writeError(w, validation("cfnemu answers DescribeStacks only for one StackName"))
	}
	s.mu.Lock()
	id := stack
	if !strings.HasPrefix(stack, "arn:") {
		id = s.names[stack]
	}
	status, ok := s.stacks[id]
	s.mu.Unlock()
	if !ok {
		return writeError(w, validation("Stack with id %s does not exist", stack))
	}
	type st struct {
		StackID      string `xml:"StackId"`
		StackName    string `xml:"StackName"`
		CreationTime string `xml:"CreationTime"`
		StackStatus  string `xml:"StackStatus"`
	}
	type answer struct {
		XMLName xml.Name `xml:"DescribeStacksResponse"`
		Xmlns   string   `xml:"xmlns,attr"`
		Stacks  []st     `xml:"DescribeStacksResult>Stacks>member"`
		ReqID   string   `xml:"ResponseMetadata>RequestId"`
	}
	out, _ := xml.Marshal(answer{Xmlns: Namespace, ReqID: emukit.RandHex(16), Stacks: []st{{
		StackID: id, StackName: StackName(id), CreationTime: s.opts.Now().UTC().Format("2006-01-02T15:04:05.000Z"), StackStatus: status,
	}}})
	w.Header().Set("Content-Type", "text/xml")
	_, _ = w.Write(append([]byte(xml.Header), out...))
	return http.StatusOK
}

func writeError(w http.ResponseWriter, e *apiError) int {
	type errBody struct {
		XMLName xml.Name `xml:"ErrorResponse"`
		Xmlns   string   `xml:"xmlns,attr"`
		Type    string   `xml:"Error>Type"`
		Code    string   `xml:"Error>Code"`
		Message string   `xml:"Error>Message"`
		ReqID   string   `xml:"RequestId"`
	}
	out, _ := xml.Marshal(errBody{Xmlns: Namespace, Type: e.typ, Code: e.code, Message: e.mesg, ReqID: emukit.RandHex(16)})
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.status)
	_, _ = w.Write(append([]byte(xml.Header), out...))
	return e.status
}
