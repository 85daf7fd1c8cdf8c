// Package testenv checks, before a package's tests run, that the machine has
// the tools beyond Go that they need: the Python tools of the README's
// Requirements (moto_server, cfn-lint, the SAM translator with boto3). They
// cannot be installed by the tests, so a missing one ends the test binary with
// one line naming it and how to get it, instead of a failure per test.
//
//	func TestMain(m *testing.M) {
//		testenv.Require(testenv.MotoServer)
//		os.Exit(m.Run())
//	}
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Tool is one outside tool the tests need.
type Tool struct {
	// Name is what the message calls it.
	Name string
	// Pip is the package that provides it: pip install <Pip>.
	Pip string
	// present reports whether the tool can be used.
	present func() bool
}

// The README's Python tools.
var (
	MotoServer    = Tool{Name: "moto_server", Pip: `"moto[server]"`, present: onPath("moto_server")}
	CfnLint       = Tool{Name: "cfn-lint", Pip: "cfn-lint", present: onPath("cfn-lint")}
	SAMTranslator = Tool{Name: "python3 with samtranslator and boto3", Pip: "aws-sam-translator boto3", present: pythonImports("samtranslator", "boto3")}
)

func onPath(name string) func() bool {
	return func() bool { _, err := exec.LookPath(name); return err == nil }
}

func pythonImports(modules ...string) func() bool {
	return func() bool {
		return exec.Command("python3", "-c", "import "+strings.Join(modules, ", ")).Run() == nil
	}
}

// Missing returns one line naming the tools that are missing and the pip
// command that installs them, or "" when all are there.
func Missing(tools ...Tool) string {
	var names, pips []string
	for _, t := range tools {
		if !t.present() {
			names = append(names, t.Name)
			pips = append(pips, t.Pip)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return fmt.Sprintf("missing %s: the tests need the README's Python tools (Requirements); install with: pip install %s",
		strings.Join(names, ", "), strings.Join(pips, " "))
}

// Require prints Missing's line and exits with status 1 when a tool is
// missing; call it first in TestMain, so that no test runs without them.
func Require(tools ...Tool) {
	if line := Missing(tools...); line != "" {
		fmt.Fprintln(os.Stderr, line)
		os.Exit(1)
	}
}
