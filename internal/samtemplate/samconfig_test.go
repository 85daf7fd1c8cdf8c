package samtemplate

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zim-deleteconv/zim-deleteconv/internal/config"
)

// placeholderSecret is what a user replaces in samconfig.toml before the first deploy.
const placeholderSecret = "arn:aws:secretsmanager:REGION:ACCOUNT_ID:secret:zim-deleteconv/zego-SUFFIX"

// samconfigParams is the part of samconfig.toml the tests read.
type samconfigParams struct {
	StackName          string   `json:"stack_name"`
	Capabilities       string   `json:"capabilities"`
	ConfirmChangeset   bool     `json:"confirm_changeset"`
	ResolveS3          bool     `json:"resolve_s3"`
	ParameterOverrides []string `json:"parameter_overrides"`
	EnvVars            string   `json:"env_vars"`
}

// readSamconfig reads samconfig.toml's default environment, command by command (deploy, local_invoke, …).
func readSamconfig(t *testing.T) map[string]samconfigParams {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is not on PATH: reading samconfig.toml needs python3 (3.11+, tomllib), which ships in the machine image")
	}
	out, err := exec.Command(python, "-c", "import json, sys, tomllib; json.dump(tomllib.load(open(sys.argv[1], 'rb')), sys.stdout)",
		"../../samconfig.toml").Output()
	if err != nil {
		t.Fatalf("reading samconfig.toml: %v", err)
	}
	var cfg struct {
		Version float64
		Default map[string]struct{ Parameters samconfigParams }
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("samconfig.toml: %v", err)
	}
	if cfg.Version != 0.1 {
		t.Errorf("samconfig.toml version %v, want 0.1", cfg.Version)
	}
	cmds := map[string]samconfigParams{}
	for cmd, c := range cfg.Default {
		cmds[cmd] = c.Parameters
	}
	return cmds
}

// TestSamconfigDeploysTheTemplate checks that samconfig.toml's deploy settings and parameter overrides fit
// template.yaml: once the secret placeholder is replaced, CloudFormation accepts them.
func TestSamconfigDeploysTheTemplate(t *testing.T) {
	t.Parallel()
	d := readSamconfig(t)["deploy"]
	// The template creates IAM roles, so CloudFormation needs CAPABILITY_IAM.
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

// TestSamLocalEnvVars checks the env-vars file samconfig.toml gives sam local invoke and sam local start-api. SAM
// reads it per function logical id and silently ignores a variable the template does not declare for that
// function. The functions must start with it: sam local resolves neither the secret parameter (no default) nor a
// Ref to a resource (the queues, the state table: it passes the logical id), so the file sets each of them, and its
// settings must pass the function's own configuration checks.
func TestSamLocalEnvVars(t *testing.T) {
	t.Parallel()
	cmds := readSamconfig(t)
	file := cmds["local_invoke"].EnvVars
	if file == "" || cmds["local_start_api"].EnvVars != file {
		t.Fatalf("samconfig.toml: local_invoke env_vars %q, local_start_api env_vars %q; want the same file for both",
			file, cmds["local_start_api"].EnvVars)
	}
	raw, err := os.ReadFile(filepath.Join("../..", file))
	if err != nil {
		t.Fatalf("samconfig.toml's env_vars: %v", err)
	}
	var perFunction map[string]map[string]string
	if err := json.Unmarshal(raw, &perFunction); err != nil {
		t.Fatalf("%s: %v (want {\"<LogicalId>\": {\"VARIABLE\": \"value\"}})", file, err)
	}
	s := deployed(t)[0]
	api, queue := functions(t, s)
	for id, fn := range map[string]resource{apiFunctionID: api, queueFunctionID: queue} {
		vars, ok := perFunction[id]
		if !ok {
			t.Errorf("%s has no %s entry: sam local would run it with the secret and queue it cannot resolve", file, id)
			continue
		}
		env := environment(fn)
		for name := range vars {
			if _, declared := env[name]; !declared {
				t.Errorf("%s sets %s.%s, which the template does not declare for %s: sam local ignores it", file, id, name, id)
			}
		}
		unresolved := []string{"ZEGO_SECRET_ID"}
		for name, v := range env {
			if strings.HasPrefix(scalar(v), "{Ref:") || strings.HasPrefix(scalar(v), "{GetAtt:") {
				unresolved = append(unresolved, name)
			}
		}
		if !slices.Contains(unresolved, "ZEGO_STATE_TABLE") || !slices.Contains(unresolved, "ZEGO_JOB_QUEUE_URL") {
			t.Errorf("%s: the state table and the job queue are no resource Refs (%v): the check proves nothing", id, unresolved)
		}
		for _, name := range unresolved {
			if _, ok := vars[name]; !ok {
				t.Errorf("%s does not set %s.%s, which sam local cannot resolve", file, id, name)
			}
		}
		if _, err := config.Load(func(name string) string {
			if v, ok := vars[name]; ok {
				return v
			}
			return scalar(env[name])
		}); err != nil {
			t.Errorf("%s with %s's settings from %s: %v", id, file, id, err)
		}
	}
	for id := range perFunction {
		if id != apiFunctionID && id != queueFunctionID && id != "Parameters" {
			t.Errorf("%s has an entry %q, which is no function of the template", file, id)
		}
	}
	// What `make stack` writes for the local ZIM server, Secrets Manager, SQS and DynamoDB (the state table) must
	// reach both functions too.
	for id, fn := range map[string]resource{apiFunctionID: api, queueFunctionID: queue} {
		for _, name := range []string{"ZEGO_API_URL", "ZEGO_STATE_TABLE", "AWS_ENDPOINT_URL_SECRETS_MANAGER",
			"AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_DYNAMODB"} {
			if _, declared := environment(fn)[name]; !declared {
				t.Errorf("%s does not declare %s: an env-vars file could not set it for sam local", id, name)
			}
		}
	}
}
