package samtemplate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// templatePath is template.yaml at the repository root, seen from this package's directory (go test's working dir).
const templatePath = "../../template.yaml"

// Parameter values of the simulated deployments.
const (
	testSecretArn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:zim-deleteconv/zego-AbC123"
	testKmsKeyArn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	testTopicArn  = "arn:aws:sns:us-east-1:123456789012:zim-deleteconv-alarms"
	testIssuer    = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example"
)

// modeCase is a parameter set whose differences change the stack's shape.
type modeCase struct {
	name   string
	params map[string]string
}

var modeCases = []modeCase{
	{"IAM", map[string]string{"ZegoSecretArn": testSecretArn}},
	{"IAM+KMS+alarm topic", map[string]string{"ZegoSecretArn": testSecretArn, "KmsKeyArn": testKmsKeyArn,
		"AlarmTopicArn": testTopicArn}},
	{"JWT", map[string]string{"ZegoSecretArn": testSecretArn, "AuthMode": "JWT", "JwtIssuer": testIssuer,
		"JwtAudience": "app-client-1,app-client-2", "JwtCallerClaim": "username"}},
	{"JWT+KMS+custom claim", map[string]string{"ZegoSecretArn": testSecretArn, "AuthMode": "JWT",
		"JwtIssuer": testIssuer, "JwtAudience": "app-client-1", "JwtCallerClaim": "custom:zim_user_id",
		"KmsKeyArn": testKmsKeyArn}},
}

// gridParams are the integer parameters that size the functions and split the rate budget: every combination of
// their MinValue..MaxValue ranges is translated and deployed.
var gridParams = []string{"RateBudget", "ApiConcurrency"}

// gridCase is one combination of gridParams values, deployed with the other parameters at their defaults.
type gridCase struct {
	params map[string]string
	tmpl   map[string]any
}

func (c gridCase) String() string {
	var s string
	for _, k := range slices.Sorted(maps.Keys(c.params)) {
		if k != "ZegoSecretArn" {
			s += fmt.Sprintf("%s=%s ", k, c.params[k])
		}
	}
	return s
}

// translation is template.yaml as written and as the SAM translator turns it into CloudFormation per case.
type translation struct {
	version string
	source  map[string]any
	modes   []map[string]any // one per modeCases entry
	grid    []gridCase
}

// translate runs the translator once per test binary: once to read the parameters' ranges, then once for every
// case.
var translate = sync.OnceValues(func() (*translation, error) {
	src, err := runTransform(nil)
	if err != nil {
		return nil, err
	}
	// The grid comes from the template's own ranges, so a widened range is checked too.
	grid := []map[string]string{{"ZegoSecretArn": testSecretArn}}
	for _, name := range gridParams {
		def := asMap(asMap(src.Source["Parameters"])[name])
		lo, hi := number(def["MinValue"]), number(def["MaxValue"])
		if def["Type"] != "Number" || !(lo <= hi) || hi-lo > 100 {
			return nil, fmt.Errorf("template.yaml: parameter %s must be a Number with a small MinValue..MaxValue range", name)
		}
		var next []map[string]string
		for _, p := range grid {
			for v := lo; v <= hi; v++ {
				q := maps.Clone(p)
				q[name] = scalar(v)
				next = append(next, q)
			}
		}
		grid = next
	}
	var cases []map[string]string
	for _, c := range modeCases {
		cases = append(cases, c.params)
	}
	cases = append(cases, grid...)
	out, err := runTransform(cases)
	if err != nil {
		return nil, err
	}
	if len(out.Transformed) != len(cases) {
		return nil, fmt.Errorf("translator returned %d templates for %d cases", len(out.Transformed), len(cases))
	}
	tr := &translation{version: out.Version, source: out.Source, modes: out.Transformed[:len(modeCases)]}
	for i, p := range grid {
		tr.grid = append(tr.grid, gridCase{params: p, tmpl: out.Transformed[len(modeCases)+i]})
	}
	return tr, nil
})

type transformOutput struct {
	Version     string           `json:"samtranslator"`
	Source      map[string]any   `json:"source"`
	Transformed []map[string]any `json:"transformed"`
}

// runTransform runs testdata/transform.py: the SAM translator, offline, once per parameter set.
func runTransform(cases []map[string]string) (*transformOutput, error) {
	python, err := exec.LookPath("python3")
	if err != nil {
		return nil, errors.New("python3 is not on PATH: the template checks need python3 with the SAM translator " +
			"(aws-sam-translator) and cfn-lint, which ship in the machine image")
	}
	tmpl, err := filepath.Abs(templatePath)
	if err != nil {
		return nil, err
	}
	if cases == nil {
		cases = []map[string]string{}
	}
	in, err := json.Marshal(map[string]any{"template": tmpl, "cases": cases})
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(python, "testdata/transform.py")
	// The translator derives the partition from the region; set one so nothing asks AWS.
	cmd.Env = append(os.Environ(), "AWS_DEFAULT_REGION="+pseudoParams["AWS::Region"])
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("SAM translator (%s testdata/transform.py) failed: %v\n%s", python, err, stderr.String())
	}
	var out transformOutput
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return nil, fmt.Errorf("SAM translator output: %w", err)
	}
	return &out, nil
}

// translated returns the translation or fails the test with the reason.
func translated(t *testing.T) *translation {
	t.Helper()
	tr, err := translate()
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// deployed returns the stack each mode case deploys, in modeCases order.
func deployed(t *testing.T) []*stack {
	t.Helper()
	tr := translated(t)
	var stacks []*stack
	for i, c := range modeCases {
		s, err := deploy(tr.modes[i], c.params)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		stacks = append(stacks, s)
	}
	return stacks
}

// forEachMode runs f as a subtest per mode case.
func forEachMode(t *testing.T, f func(t *testing.T, c modeCase, s *stack)) {
	t.Helper()
	stacks := deployed(t)
	for i, c := range modeCases {
		t.Run(c.name, func(t *testing.T) { f(t, c, stacks[i]) })
	}
}
