package samtemplate

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestDocsNameOutputs checks that every stack output the guides read ($(out Name)) exists.
func TestDocsNameOutputs(t *testing.T) {
	t.Parallel()
	outputs := asMap(translated(t).source["Outputs"])
	ref := regexp.MustCompile(`\$\(out ([A-Za-z0-9]+)\)`)
	named := 0
	for _, doc := range []string{"../../README.md", "../../docs/deploy.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ref.FindAllStringSubmatch(string(b), -1) {
			named++
			if _, ok := outputs[m[1]]; !ok {
				t.Errorf("%s reads the stack output %s, which template.yaml does not have", filepath.Base(doc), m[1])
			}
		}
	}
	if named == 0 {
		t.Error("the guides read no stack output: the check would prove nothing")
	}
}
