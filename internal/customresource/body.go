package customresource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
)

// response is the JSON body CloudFormation reads from the pre-signed URL.
type response struct {
	Status             string            `json:"Status"`
	Reason             string            `json:"Reason,omitempty"`
	PhysicalResourceID string            `json:"PhysicalResourceId"`
	StackID            string            `json:"StackId"`
	RequestID          string            `json:"RequestId"`
	LogicalResourceID  string            `json:"LogicalResourceId"`
	NoEcho             bool              `json:"NoEcho"`
	Data               map[string]string `json:"Data,omitempty"`
}

// truncatedMarker ends a Reason that was cut to fit.
const truncatedMarker = " ... [truncated]"

// buildBody marshals the answer and makes it fit MaxBodyBytes (fitBody). It returns the body and
// the response actually sent, which may differ from ans in Status, Reason and Data.
func buildBody(req Request, ans answer) ([]byte, response, error) {
	r := response{
		Status:             ans.status,
		Reason:             ans.reason,
		PhysicalResourceID: ans.physicalID,
		StackID:            req.StackID,
		RequestID:          req.RequestID,
		LogicalResourceID:  req.LogicalResourceID,
		NoEcho:             ans.noEcho,
		Data:               ans.data,
	}
	return fitBody(r)
}

// fitBody keeps the body within MaxBodyBytes. The echoed ids must stay exact, so only Reason and
// Data can give way:
//   - Reason is truncated first, on a rune boundary, ending in truncatedMarker.
//   - FAILED answers never carry Data (enforce drops it: CloudFormation ignores it).
//   - A SUCCESS whose Data alone does not fit becomes FAILED with Data dropped and the Reason
//     saying so. Answering SUCCESS without the attributes would let the stack go on and break
//     later at an Fn::GetAtt with a confusing message; FAILED keeps the handler's physical id, so
//     CloudFormation's rollback Delete still cleans up what the handler made.
func fitBody(r response) ([]byte, response, error) {
	b, err := marshal(r)
	if err != nil {
		return nil, r, err
	}
	if len(b) <= MaxBodyBytes {
		return b, r, nil
	}
	if r.Data != nil {
		db, _ := marshal(r.Data)
		reason := fmt.Sprintf("the handler succeeded but its Data (%d bytes as JSON) does not fit CloudFormation's %d-byte response, so it was dropped and the resource reported FAILED",
			len(db), MaxBodyBytes)
		if r.Reason != "" {
			reason += "; " + r.Reason
		}
		r.Status, r.Reason, r.Data, r.NoEcho = StatusFailed, reason, nil, false
		if b, err = marshal(r); err != nil {
			return nil, r, err
		}
		if len(b) <= MaxBodyBytes {
			return b, r, nil
		}
	}
	return fitReason(r)
}

// fitReason finds, by binary search, the longest Reason prefix that fits with the marker.
// JSON escaping makes the encoded size grow monotonically with the prefix, so the search is exact.
func fitReason(r response) ([]byte, response, error) {
	full := r.Reason
	try := func(n int) ([]byte, response, bool) {
		c := r
		c.Reason = kit.Cut(full, n) + truncatedMarker
		b, err := marshal(c)
		return b, c, err == nil && len(b) <= MaxBodyBytes
	}
	best, bestResp, ok := try(0)
	if !ok {
		return nil, r, errors.New("the response does not fit CloudFormation's 4096-byte limit even with an empty Reason (StackId, LogicalResourceId or physical id too long)")
	}
	lo, hi := 0, len(full) // invariant: try(lo) fits; try(hi+1..) is unknown
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if b, c, fits := try(mid); fits {
			lo, best, bestResp = mid, b, c
		} else {
			hi = mid - 1
		}
	}
	return best, bestResp, nil
}

// marshal encodes without HTML escaping (CloudFormation reads plain JSON; escaping <, > and &
// would only spend bytes of the 4096) and without the encoder's trailing newline.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding the CloudFormation response: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
