// Package templatecheck pins the security properties of template.yaml and examples/ in tests:
// least-privilege IAM, who may invoke the rotator, the function settings SAM builds from, the
// alarms and the exports. This file is the one piece of non-test code, a small loader that
// reads CloudFormation YAML (with its short-form tags) into plain Go values.
package templatecheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// loaderScript turns CloudFormation YAML into JSON. Short-form tags become the long form that
// CloudFormation itself uses, so checks see one shape: !Ref X -> {"Ref": X}, !GetAtt A.B ->
// {"Fn::GetAtt": ["A", "B"]}, !Condition X -> {"Condition": X}, any other !Name V ->
// {"Fn::Name": V}.
const loaderScript = `
import json, sys, yaml

class Loader(yaml.SafeLoader):
    pass

def intrinsic(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {"Fn::" + suffix: value}

Loader.add_multi_constructor("!", intrinsic)
with open(sys.argv[1], encoding="utf-8") as f:
    doc = yaml.load(f, Loader=Loader)
json.dump(doc, sys.stdout, default=str)
`

// ErrNoPython means python3 with PyYAML is not available to read YAML.
var ErrNoPython = errors.New("python3 with PyYAML is needed to read CloudFormation YAML (it comes with cfn-lint: pip install cfn-lint, or apt-get install python3-yaml)")

// Load reads the CloudFormation YAML template at path into JSON-shaped values (map[string]any,
// []any, string, float64, bool, nil), with short-form intrinsic tags in their long form.
//
// It parses with PyYAML through python3 — installed with cfn-lint, which `make lint` already
// needs — because the module has no Go YAML library of its own: gopkg.in/yaml.v3 is in the module
// graph only as a test dependency of a dependency, and importing it would change go.mod.
func Load(path string) (map[string]any, error) {
	python, err := exec.LookPath("python3")
	if err != nil {
		return nil, fmt.Errorf("loading template %s: %w", path, ErrNoPython)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(python, "-c", loaderScript, path)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "No module named 'yaml'") {
			return nil, fmt.Errorf("loading template %s: %w", path, ErrNoPython)
		}
		return nil, fmt.Errorf("loading template %s: python3 YAML loader: %w: %s", path, err, msg)
	}
	var doc map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
		return nil, fmt.Errorf("loading template %s: decoding the loader's JSON (is the file a YAML mapping?): %w", path, err)
	}
	return doc, nil
}
