package samtemplate

import (
	"os"
	"testing"

	"github.com/zim-deleteconv/zim-deleteconv/internal/testenv"
)

// The template tests run cfn-lint and the SAM translator.
func TestMain(m *testing.M) {
	testenv.Require(testenv.CfnLint, testenv.SAMTranslator)
	os.Exit(m.Run())
}
