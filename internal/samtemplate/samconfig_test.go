package samtemplate

import (
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// placeholderSecret is what a user replaces in samconfig.toml before the first deploy.
const placeholderSecret = "arn:aws:secretsmanager:REGION:ACCOUNT_ID:secret:zim-deleteconv/zego-SUFFIX"

// TestSamconfigDeploysTheTemplate checks that samconfig.toml's deploy settings and parameter overrides fit
// template.yaml: once the secret placeholder is replaced, CloudFormation accepts them.
func TestSamconfigDeploysTheTemplate(t *testing.T) {
	t.Parallel()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is not on PATH: reading samconfig.toml needs python3 (3.11+, tomllib), which ships in the machine image")
	}
	cmd := exec.Command(python, "-c", "import json, sys, tomllib; json.dump(tomllib.load(open(sys.argv[1], 'rb')), sys.stdout)",
		"../../samconfig.toml")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("reading samconfig.toml: %v", err)
	}
	var cfg struct {
		Version float64
		Default struct {
			Deploy struct {
				Parameters struct {
					StackName          string   `json:"stack_name"`
					Capabilities       string   `json:"capabilities"`
					ConfirmChangeset   bool     `json:"confirm_changeset"`
					ResolveS3          bool     `json:"resolve_s3"`
					ParameterOverrides []string `json:"parameter_overrides"`
				}
			}
		}
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("samconfig.toml: %v", err)
	}
	if cfg.Version != 0.1 {
		t.Errorf("samconfig.toml version %v, want 0.1", cfg.Version)
	}
	d := cfg.Default.Deploy.Parameters
	// The template creates an IAM role, so CloudFormation needs CAPABILITY_IAM.
	if d.StackName != "zim-deleteconv" || d.Capabilities != "CAPABILITY_IAM" || !d.ConfirmChangeset || !d.ResolveS3 {
		t.Errorf("deploy parameters %+v, want stack_name zim-deleteconv, CAPABILITY_IAM, confirm_changeset, resolve_s3", d)
	}

	params := map[string]string{}
	for _, o := range d.ParameterOverrides {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			t.Fatalf("parameter override %q is not Key=Value", o)
		}
		params[k] = v
	}
	if params["ZegoSecretArn"] != placeholderSecret {
		t.Errorf("ZegoSecretArn override %q, want the placeholder %s", params["ZegoSecretArn"], placeholderSecret)
	}
	// The placeholder must not deploy as it is: it fails the parameter's pattern.
	var refused *refusedError
	if _, err := deploy(translated(t).modes[0], params); !errors.As(err, &refused) {
		t.Errorf("samconfig.toml with the placeholder secret ARN: %v, want CloudFormation to refuse it", err)
	}
	params["ZegoSecretArn"] = testSecretArn
	if _, err := deploy(translated(t).modes[0], params); err != nil {
		t.Errorf("samconfig.toml's parameter overrides do not deploy: %v", err)
	}
}
