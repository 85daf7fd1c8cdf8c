package samtemplate

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCfnLint fails on any cfn-lint finding, warnings included: cfn-lint validates the template through the SAM
// transform (event source properties, runtimes, visibility timeout against the function timeout, …).
func TestCfnLint(t *testing.T) {
	t.Parallel()
	lint, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Fatal("cfn-lint is not on PATH: it ships in the machine image's Python (pip install cfn-lint)")
	}
	cmd := exec.Command(lint, "template.yaml")
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("cfn-lint template.yaml (%v):\n%s", err, out)
	}
}
