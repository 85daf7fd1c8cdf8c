package samtemplate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
		"JwtAudience": "app-client-1,app-client-2"}},
	{"JWT+KMS+custom claim", map[string]string{"ZegoSecretArn": testSecretArn, "AuthMode": "JWT",
		"JwtIssuer": testIssuer, "JwtAudience": "app-client-1", "JwtCallerClaim": "custom:zim_user_id",
		"KmsKeyArn": testKmsKeyArn}},
}

// budgetCase is one (MaxConcurrency, RateBudget) pair out of the parameters' AllowedValues.
type budgetCase struct {
	maxConcurrency, rateBudget string
}

func (c budgetCase) params() map[string]string {
	return map[string]string{"ZegoSecretArn": testSecretArn, "MaxConcurrency": c.maxConcurrency,
		"RateBudget": c.rateBudget}
}

// translation is template.yaml as written and as the SAM translator turns it into CloudFormation per case.
type translation struct {
	version string
	source  map[string]any
	modes   []map[string]any // one per modeCases entry
	budgets map[budgetCase]map[string]any
}

// translate runs the translator once per test binary: once to read the parameters' AllowedValues, then once
// for every case.
var translate = sync.OnceValues(func() (*translation, error) {
	// The budget cases come from the template's own AllowedValues, so a widened range is checked too.
	src, err := runTransform(nil)
	if err != nil {
		return nil, err
	}
	allowed := func(name string) []any {
		return asList(asMap(asMap(src.Source["Parameters"])[name])["AllowedValues"])
	}
	var budgets []budgetCase
	for _, n := range allowed("MaxConcurrency") {
		for _, b := range allowed("RateBudget") {
			budgets = append(budgets, budgetCase{scalar(n), scalar(b)})
		}
	}
	if len(budgets) == 0 {
		return nil, errors.New("template.yaml: MaxConcurrency and RateBudget need AllowedValues (the budget is checked per pair)")
	}
	var cases []map[string]string
	for _, c := range modeCases {
		cases = append(cases, c.params)
	}
	for _, c := range budgets {
		cases = append(cases, c.params())
	}
	out, err := runTransform(cases)
	if err != nil {
		return nil, err
	}
	if len(out.Transformed) != len(cases) {
		return nil, fmt.Errorf("translator returned %d templates for %d cases", len(out.Transformed), len(cases))
	}
	tr := &translation{version: out.Version, source: out.Source, modes: out.Transformed[:len(modeCases)],
		budgets: map[budgetCase]map[string]any{}}
	for i, c := range budgets {
		tr.budgets[c] = out.Transformed[len(modeCases)+i]
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

// deployed returns the stack each mode case deploys, by case name.
func deployed(t *testing.T) map[string]*stack {
	t.Helper()
	tr := translated(t)
	stacks := map[string]*stack{}
	for i, c := range modeCases {
		s, err := deploy(tr.modes[i], c.params)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		stacks[c.name] = s
	}
	return stacks
}
