package samtemplate

import (
	"errors"
	"fmt"
	"math"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// functionID is the function's logical id: the Makefile's SAM target is build-<logical id>.
const functionID = "DeleteConvFunction"

// zegoBudget is ZEGO's DeleteConv limit: requests per second per AppId, across every caller.
const zegoBudget = 20

// contractEnv is every environment variable the function contract defines.
var contractEnv = []string{"ZEGO_SECRET_ID", "ZEGO_API_URL", "ZEGO_RATE_LIMIT", "ZEGO_SECRET_TTL", "LOG_LEVEL",
	"ZEGO_CALLER_CLAIM"}

func TestSourceTemplateIsBuiltByTheMakefile(t *testing.T) {
	t.Parallel()
	src := translated(t).source
	fn := asMap(asMap(src["Resources"])[functionID])
	if fn["Type"] != "AWS::Serverless::Function" {
		t.Fatalf("%s: Type %v, want AWS::Serverless::Function", functionID, fn["Type"])
	}
	if got := asMap(fn["Metadata"])["BuildMethod"]; got != "makefile" {
		t.Errorf("%s: Metadata.BuildMethod %v, want makefile (the Makefile passes -tags lambda.norpc and -ldflags)",
			functionID, got)
	}
	// sam build runs the make target inside CodeUri, and the Makefile builds ./functions/deleteconv from the root.
	if got := asMap(fn["Properties"])["CodeUri"]; got != "." {
		t.Errorf("%s: CodeUri %v, want . (the module root, where the Makefile is)", functionID, got)
	}

	// What sam build runs: make build-<LogicalId> with ARTIFACTS_DIR set; -n prints the commands without running them.
	cmd := exec.Command("make", "-n", "build-"+functionID, "ARTIFACTS_DIR=/artifacts")
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n build-%s: %v\n%s", functionID, err, out)
	}
	for _, want := range []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64", "-tags lambda.norpc",
		"-o /artifacts/bootstrap", "./functions/deleteconv"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("make build-%s does not run %q; it runs:\n%s", functionID, want, out)
		}
	}
}

func TestFunction(t *testing.T) {
	t.Parallel()
	for _, c := range modeCases {
		s := deployed(t)[c.name]
		t.Run(c.name, func(t *testing.T) {
			fn := function(t, s)
			for prop, want := range map[string]any{"Runtime": "provided.al2023", "Handler": "bootstrap",
				"Architectures": []any{"arm64"}} {
				if got := fn.Properties[prop]; fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s %v, want %v", prop, got, want)
				}
			}
			if timeout := number(fn.Properties["Timeout"]); timeout <= 0 || timeout > 900 {
				t.Errorf("Timeout %v: set it explicitly (seconds, at most 900)", fn.Properties["Timeout"])
			}
			if mem := number(fn.Properties["MemorySize"]); mem < 128 {
				t.Errorf("MemorySize %v: set it explicitly (at least 128 MB)", fn.Properties["MemorySize"])
			}
			logging := asMap(fn.Properties["LoggingConfig"])
			if logging["LogFormat"] != "JSON" {
				t.Errorf("LoggingConfig.LogFormat %v, want JSON", logging["LogFormat"])
			}
			// Lambda counts a line without "level" (an EMF metric line) as INFO; a WARN or ERROR filter would drop
			// the metrics, and INFO would drop LOG_LEVEL=debug lines. LOG_LEVEL must be the only filter.
			if lvl := logging["ApplicationLogLevel"]; lvl != "TRACE" && lvl != "DEBUG" {
				t.Errorf("LoggingConfig.ApplicationLogLevel %v drops log or EMF lines; want TRACE (LOG_LEVEL filters)", lvl)
			}

			env := asMap(asMap(fn.Properties["Environment"])["Variables"])
			for name := range env {
				if !slices.Contains(contractEnv, name) {
					t.Errorf("environment variable %s is not in the function contract %v", name, contractEnv)
				}
			}
			for name, want := range map[string]string{"ZEGO_SECRET_ID": testSecretArn,
				"ZEGO_API_URL": "https://zim-api.zego.im", "ZEGO_SECRET_TTL": "5m", "LOG_LEVEL": "info"} {
				if got, ok := env[name]; !ok || scalar(got) != want {
					t.Errorf("%s = %v (set: %t), want %q", name, got, ok, want)
				}
			}
			claim, hasClaim := env["ZEGO_CALLER_CLAIM"]
			switch wantClaim := c.params["JwtCallerClaim"]; {
			case c.params["AuthMode"] != "JWT":
				if hasClaim && claim != "" {
					t.Errorf("IAM mode sets ZEGO_CALLER_CLAIM=%v; it must be unset so IAM callers are not checked "+
						"against a JWT claim", claim)
				}
			case wantClaim == "":
				if claim != "sub" {
					t.Errorf("JWT mode: ZEGO_CALLER_CLAIM=%v (set: %t), want the default claim sub", claim, hasClaim)
				}
			default:
				if claim != wantClaim {
					t.Errorf("JWT mode: ZEGO_CALLER_CLAIM=%v (set: %t), want %q", claim, hasClaim, wantClaim)
				}
			}
		})
	}
}

func TestQueues(t *testing.T) {
	t.Parallel()
	for _, c := range modeCases {
		s := deployed(t)[c.name]
		t.Run(c.name, func(t *testing.T) {
			fn := function(t, s)
			esms := s.ofType("AWS::Lambda::EventSourceMapping")
			if len(esms) != 1 {
				t.Fatalf("event source mappings %v, want exactly one (the queue)", esms)
			}
			esm := s.Resources[esms[0]].Properties
			if esm["FunctionName"] != "{Ref:"+functionID+"}" {
				t.Errorf("event source mapping feeds %v, want %s", esm["FunctionName"], functionID)
			}
			if !slices.Contains(asList(esm["FunctionResponseTypes"]), any("ReportBatchItemFailures")) {
				t.Errorf("FunctionResponseTypes %v: without ReportBatchItemFailures a failed record retries the "+
					"whole batch", esm["FunctionResponseTypes"])
			}
			if size := number(esm["BatchSize"]); size < 1 || size > 10 {
				t.Errorf("BatchSize %v, want 1..10", esm["BatchSize"])
			}
			window := math.Max(0, number(esm["MaximumBatchingWindowInSeconds"]))

			queueID := getAttOf(t, s, "EventSourceArn", esm["EventSourceArn"], "AWS::SQS::Queue", "Arn")
			queue := s.Resources[queueID].Properties
			timeout := number(fn.Properties["Timeout"])
			if vis := number(queue["VisibilityTimeout"]); vis < 6*timeout+window {
				t.Errorf("queue VisibilityTimeout %v < 6 x function Timeout %v + batching window %v: records "+
					"still being processed come back", queue["VisibilityTimeout"], timeout, window)
			}
			redrive := asMap(queue["RedrivePolicy"])
			dlqID := getAttOf(t, s, "RedrivePolicy.deadLetterTargetArn", redrive["deadLetterTargetArn"], "AWS::SQS::Queue", "Arn")
			if dlqID == queueID {
				t.Fatalf("the queue redrives to itself")
			}
			// AWS's advice for Lambda event sources: at least 5, so that invocations throttled by the reserved
			// concurrency (HTTP callers using every instance) do not send messages to the dead-letter queue.
			if n := number(redrive["maxReceiveCount"]); n < 5 {
				t.Errorf("RedrivePolicy.maxReceiveCount %v, want at least 5", redrive["maxReceiveCount"])
			}
			dlq := s.Resources[dlqID].Properties
			if got := number(dlq["MessageRetentionPeriod"]); got != 1209600 {
				t.Errorf("dead-letter queue MessageRetentionPeriod %v, want 1209600 (14 days)", dlq["MessageRetentionPeriod"])
			}
			queueRetention := 345600.0 // SQS default, 4 days
			if v, ok := queue["MessageRetentionPeriod"]; ok {
				queueRetention = number(v)
			}
			if queueRetention >= number(dlq["MessageRetentionPeriod"]) {
				t.Errorf("queue retention %v is not below the dead-letter queue's %v: a redriven message keeps its "+
					"enqueue time and may expire at once", queueRetention, dlq["MessageRetentionPeriod"])
			}

			queues := s.ofType("AWS::SQS::Queue")
			if len(queues) != 2 {
				t.Errorf("queues %v, want the queue and its dead-letter queue", queues)
			}
			for _, id := range queues {
				q := s.Resources[id].Properties
				if q["SqsManagedSseEnabled"] != true && q["KmsMasterKeyId"] == nil {
					t.Errorf("queue %s is not encrypted at rest (SqsManagedSseEnabled or KmsMasterKeyId)", id)
				}
				if !deniesInsecureTransport(s, id) {
					t.Errorf("queue %s has no queue policy denying requests without TLS (aws:SecureTransport false)", id)
				}
			}
		})
	}
}

// deniesInsecureTransport reports whether a queue policy of queue id denies every SQS action without TLS.
func deniesInsecureTransport(s *stack, id string) bool {
	for _, pid := range s.ofType("AWS::SQS::QueuePolicy") {
		p := s.Resources[pid].Properties
		if !slices.Contains(asList(p["Queues"]), any("{Ref:"+id+"}")) {
			continue
		}
		for _, st := range statements(asMap(p["PolicyDocument"])) {
			if st["Effect"] != "Deny" || fmt.Sprint(st["Principal"]) != "*" {
				continue
			}
			if !slices.ContainsFunc(list(st["Action"]), func(a any) bool { return a == "sqs:*" || a == "*" }) {
				continue
			}
			if !slices.Contains(list(st["Resource"]), any("{GetAtt:"+id+".Arn}")) {
				continue
			}
			if scalar(asMap(asMap(st["Condition"])["Bool"])["aws:SecureTransport"]) == "false" {
				return true
			}
		}
	}
	return false
}

func TestHTTPAPI(t *testing.T) {
	t.Parallel()
	for _, c := range modeCases {
		s := deployed(t)[c.name]
		t.Run(c.name, func(t *testing.T) {
			fn := function(t, s)
			if ids := append(s.ofType("AWS::ApiGateway::RestApi"), s.ofType("AWS::Lambda::Url")...); len(ids) > 0 {
				t.Errorf("other HTTP entry points %v: the HTTP API is the only one", ids)
			}
			apis := s.ofType("AWS::ApiGatewayV2::Api")
			if len(apis) != 1 {
				t.Fatalf("HTTP APIs %v, want one", apis)
			}
			api := s.Resources[apis[0]].Properties
			// Target (quick create) adds an unauthorised $default route; a Body can define routes of its own.
			for _, prop := range []string{"Target", "Body", "BodyS3Location"} {
				if _, ok := api[prop]; ok {
					t.Errorf("HTTP API has %s: routes must come only from AWS::ApiGatewayV2::Route", prop)
				}
			}

			routes := s.ofType("AWS::ApiGatewayV2::Route")
			if len(routes) != 1 {
				t.Fatalf("routes %v, want only POST /conversations/delete", routes)
			}
			route := s.Resources[routes[0]].Properties
			if route["RouteKey"] != "POST /conversations/delete" {
				t.Errorf("RouteKey %v, want POST /conversations/delete", route["RouteKey"])
			}
			authorizers := s.ofType("AWS::ApiGatewayV2::Authorizer")
			if c.params["AuthMode"] == "JWT" {
				if route["AuthorizationType"] != "JWT" {
					t.Errorf("JWT mode: AuthorizationType %v, want JWT", route["AuthorizationType"])
				}
				authID := refOf(t, s, "route AuthorizerId", route["AuthorizerId"], "AWS::ApiGatewayV2::Authorizer")
				a := s.Resources[authID].Properties
				jwt := asMap(a["JwtConfiguration"])
				wantAud := strings.Split(c.params["JwtAudience"], ",")
				if a["AuthorizerType"] != "JWT" || jwt["Issuer"] != c.params["JwtIssuer"] ||
					fmt.Sprint(jwt["Audience"]) != fmt.Sprint(wantAud) {
					t.Errorf("authorizer %v, want a JWT authorizer with issuer %s and audience %v", a,
						c.params["JwtIssuer"], wantAud)
				}
				if !slices.Contains(asList(a["IdentitySource"]), any("$request.header.Authorization")) {
					t.Errorf("authorizer IdentitySource %v, want the Authorization header", a["IdentitySource"])
				}
			} else {
				if route["AuthorizationType"] != "AWS_IAM" {
					t.Errorf("IAM mode: AuthorizationType %v, want AWS_IAM", route["AuthorizationType"])
				}
				if len(authorizers) > 0 || route["AuthorizerId"] != nil {
					t.Errorf("IAM mode deploys authorizers %v / AuthorizerId %v", authorizers, route["AuthorizerId"])
				}
			}

			target, _ := route["Target"].(string)
			integrationID := refOf(t, s, "route Target", strings.TrimPrefix(target, "integrations/"),
				"AWS::ApiGatewayV2::Integration")
			integration := s.Resources[integrationID].Properties
			if integration["IntegrationType"] != "AWS_PROXY" || integration["PayloadFormatVersion"] != "2.0" ||
				integration["IntegrationUri"] != "{GetAtt:"+functionID+".Arn}" {
				t.Errorf("integration %v, want AWS_PROXY to %s with payload 2.0", integration, functionID)
			}
			integrationTimeout := 30000.0
			if v, ok := integration["TimeoutInMillis"]; ok {
				integrationTimeout = number(v)
			}
			if ms := 1000 * number(fn.Properties["Timeout"]); ms >= integrationTimeout {
				t.Errorf("function Timeout %vs is not below the integration timeout %vms: HTTP callers would get "+
					"API Gateway's timeout instead of the function's 504", fn.Properties["Timeout"], integrationTimeout)
			}

			stages := s.ofType("AWS::ApiGatewayV2::Stage")
			if len(stages) != 1 {
				t.Fatalf("stages %v, want one", stages)
			}
			throttle := asMap(s.Resources[stages[0]].Properties["DefaultRouteSettings"])
			for _, k := range []string{"ThrottlingRateLimit", "ThrottlingBurstLimit"} {
				if v := number(throttle[k]); v <= 0 {
					t.Errorf("stage DefaultRouteSettings.%s %v: set stage throttling", k, throttle[k])
				}
			}

			// API Gateway may invoke the function for this route only.
			for _, id := range s.ofType("AWS::Lambda::Permission") {
				p := s.Resources[id].Properties
				if p["Principal"] != "apigateway.amazonaws.com" {
					t.Errorf("permission %s lets %v invoke the function", id, p["Principal"])
					continue
				}
				if src, _ := p["SourceArn"].(string); !strings.HasSuffix(src, "/POST/conversations/delete") ||
					!strings.Contains(src, "{Ref:"+apis[0]+"}") {
					t.Errorf("permission %s SourceArn %v, want the HTTP API's POST /conversations/delete only",
						id, p["SourceArn"])
				}
			}
		})
	}
}

func TestFunctionRoleIsLeastPrivilege(t *testing.T) {
	t.Parallel()
	for _, c := range modeCases {
		s := deployed(t)[c.name]
		t.Run(c.name, func(t *testing.T) {
			fn := function(t, s)
			roleID := getAttOf(t, s, "function Role", fn.Properties["Role"], "AWS::IAM::Role", "Arn")
			role := s.Resources[roleID].Properties
			for _, st := range statements(asMap(role["AssumeRolePolicyDocument"])) {
				if p := fmt.Sprint(asMap(st["Principal"])["Service"]); p != "lambda.amazonaws.com" {
					t.Errorf("role trusts %v, want lambda.amazonaws.com only", st["Principal"])
				}
			}
			for _, arn := range asList(role["ManagedPolicyArns"]) {
				if !strings.HasSuffix(scalar(arn), ":policy/service-role/AWSLambdaBasicExecutionRole") {
					t.Errorf("managed policy %v on the function role: write the permissions out, scoped", arn)
				}
			}

			var sts []map[string]any
			for _, p := range asList(role["Policies"]) {
				sts = append(sts, statements(asMap(asMap(p)["PolicyDocument"]))...)
			}
			for _, typ := range []string{"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"} {
				for _, id := range s.ofType(typ) {
					p := s.Resources[id].Properties
					if slices.Contains(asList(p["Roles"]), any("{Ref:"+roleID+"}")) || p["RoleName"] == "{Ref:"+roleID+"}" {
						sts = append(sts, statements(asMap(p["PolicyDocument"]))...)
					}
				}
			}
			if len(sts) == 0 {
				t.Fatal("the function role has no policy statements")
			}

			var secretGrants, kmsGrants []map[string]any
			for _, st := range sts {
				if st["Effect"] != "Allow" {
					continue
				}
				if _, ok := st["NotAction"]; ok {
					t.Errorf("statement %v uses NotAction", st)
				}
				if _, ok := st["NotResource"]; ok {
					t.Errorf("statement %v uses NotResource", st)
				}
				for _, a := range list(st["Action"]) {
					if strings.Contains(scalar(a), "*") {
						t.Errorf("action %v has a wildcard", a)
					}
				}
				for _, r := range list(st["Resource"]) {
					if strings.Contains(scalar(r), "*") {
						t.Errorf("statement %v grants on resource %v", st["Action"], r)
					}
				}
				for _, a := range list(st["Action"]) {
					switch service, _, _ := strings.Cut(strings.ToLower(scalar(a)), ":"); {
					case service == "secretsmanager":
						secretGrants = append(secretGrants, st)
					case service == "kms":
						kmsGrants = append(kmsGrants, st)
					}
				}
			}

			if len(secretGrants) != 1 || fmt.Sprint(list(secretGrants[0]["Action"])) != "[secretsmanager:GetSecretValue]" ||
				fmt.Sprint(list(secretGrants[0]["Resource"])) != "["+testSecretArn+"]" {
				t.Errorf("Secrets Manager grants %v, want one: GetSecretValue on exactly %s", secretGrants, testSecretArn)
			}
			if c.params["KmsKeyArn"] == "" {
				if len(kmsGrants) > 0 {
					t.Errorf("no KmsKeyArn, yet KMS grants %v", kmsGrants)
				}
				return
			}
			wantVia := "secretsmanager." + pseudoParams["AWS::Region"] + ".amazonaws.com"
			if len(kmsGrants) != 1 || fmt.Sprint(list(kmsGrants[0]["Action"])) != "[kms:Decrypt]" ||
				fmt.Sprint(list(kmsGrants[0]["Resource"])) != "["+c.params["KmsKeyArn"]+"]" ||
				asMap(asMap(kmsGrants[0]["Condition"])["StringEquals"])["kms:ViaService"] != wantVia {
				t.Errorf("KMS grants %v, want one: kms:Decrypt on exactly %s via %s", kmsGrants, c.params["KmsKeyArn"], wantVia)
			}
		})
	}
}

// TestRateBudget deploys every allowed (MaxConcurrency, RateBudget) pair: either CloudFormation refuses the pair
// (only when the budget cannot give each instance one request per second), or the fleet stays within the budget.
func TestRateBudget(t *testing.T) {
	t.Parallel()
	tr := translated(t)
	accepted := 0
	for c, tmpl := range tr.budgets {
		n, budget := number(c.maxConcurrency), number(c.rateBudget)
		s, err := deploy(tmpl, c.params())
		var refused *refusedError
		if errors.As(err, &refused) {
			if budget >= n {
				t.Errorf("MaxConcurrency=%s RateBudget=%s refused although the budget covers the instances: %v",
					c.maxConcurrency, c.rateBudget, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("MaxConcurrency=%s RateBudget=%s: %v", c.maxConcurrency, c.rateBudget, err)
		}
		accepted++
		fn := function(t, s)
		reserved := number(fn.Properties["ReservedConcurrentExecutions"])
		rate := number(asMap(asMap(fn.Properties["Environment"])["Variables"])["ZEGO_RATE_LIMIT"])
		where := fmt.Sprintf("MaxConcurrency=%s RateBudget=%s: reserved concurrency %v, ZEGO_RATE_LIMIT %v",
			c.maxConcurrency, c.rateBudget, fn.Properties["ReservedConcurrentExecutions"],
			asMap(asMap(fn.Properties["Environment"])["Variables"])["ZEGO_RATE_LIMIT"])
		switch {
		case budget < n:
			t.Errorf("%s: deployed although the budget is below one request/second per instance", where)
		case reserved != n:
			t.Errorf("%s: the reserved concurrency must be MaxConcurrency, or instances are unbounded", where)
		case rate < 1 || rate != math.Floor(rate):
			t.Errorf("%s: the per-instance rate must be a whole number of at least 1", where)
		case reserved*rate > zegoBudget || reserved*rate > budget:
			t.Errorf("%s: the fleet may send %v requests/second, over the budget", where, reserved*rate)
		case rate != math.Floor(budget/n):
			t.Errorf("%s: want floor(RateBudget / MaxConcurrency) = %v", where, math.Floor(budget/n))
		}
		if got := number(s.Outputs["PerInstanceRateLimit"]); got != rate {
			t.Errorf("%s: output PerInstanceRateLimit %v", where, s.Outputs["PerInstanceRateLimit"])
		}
		for _, id := range s.ofType("AWS::Lambda::EventSourceMapping") {
			mc := number(asMap(s.Resources[id].Properties["ScalingConfig"])["MaximumConcurrency"])
			if mc < 2 || mc > reserved {
				t.Errorf("%s: SQS ScalingConfig.MaximumConcurrency %v, want 2..reserved concurrency "+
					"(more pollers than instances are throttled by Lambda)", where, mc)
			}
		}
		for _, id := range s.ofType("AWS::ApiGatewayV2::Stage") {
			rl := asMap(s.Resources[id].Properties["DefaultRouteSettings"])["ThrottlingRateLimit"]
			if number(rl) > budget {
				t.Errorf("%s: stage ThrottlingRateLimit %v is above the budget", where, rl)
			}
		}
	}
	if accepted == 0 {
		t.Fatal("no (MaxConcurrency, RateBudget) pair deploys")
	}
	if _, err := deploy(tr.modes[0], modeCases[0].params); err != nil {
		t.Errorf("the default MaxConcurrency and RateBudget do not deploy: %v", err)
	}
}

func TestDeadLetterQueueAlarm(t *testing.T) {
	t.Parallel()
	for _, c := range modeCases {
		s := deployed(t)[c.name]
		t.Run(c.name, func(t *testing.T) {
			_, dlqID := sqsQueues(t, s)
			var found bool
			for _, id := range s.ofType("AWS::CloudWatch::Alarm") {
				a := s.Resources[id].Properties
				dims := asList(a["Dimensions"])
				if a["Namespace"] != "AWS/SQS" || a["MetricName"] != "ApproximateNumberOfMessagesVisible" ||
					len(dims) != 1 || asMap(dims[0])["Name"] != "QueueName" ||
					asMap(dims[0])["Value"] != "{GetAtt:"+dlqID+".QueueName}" {
					continue
				}
				found = true
				op, threshold := a["ComparisonOperator"], number(a["Threshold"])
				if !(op == "GreaterThanThreshold" && threshold == 0) && !(op == "GreaterThanOrEqualToThreshold" && threshold == 1) {
					t.Errorf("alarm %s fires on %v %v, want on the first message", id, op, a["Threshold"])
				}
				actions := fmt.Sprint(asList(a["AlarmActions"]))
				if topic := c.params["AlarmTopicArn"]; topic != "" && actions != "["+topic+"]" {
					t.Errorf("alarm %s actions %s, want %s", id, actions, topic)
				} else if topic == "" && len(asList(a["AlarmActions"])) > 0 {
					t.Errorf("alarm %s actions %s without an AlarmTopicArn", id, actions)
				}
			}
			if !found {
				t.Errorf("no alarm on the dead-letter queue %s's ApproximateNumberOfMessagesVisible", dlqID)
			}
		})
	}
}

func TestOutputs(t *testing.T) {
	t.Parallel()
	for _, c := range modeCases {
		s := deployed(t)[c.name]
		t.Run(c.name, func(t *testing.T) {
			api := s.ofType("AWS::ApiGatewayV2::Api")[0]
			queueID, dlqID := sqsQueues(t, s)
			want := map[string]string{
				"ApiUrl":             "https://{Ref:" + api + "}.execute-api.us-east-1.amazonaws.com/conversations/delete",
				"QueueUrl":           "{Ref:" + queueID + "}",
				"DeadLetterQueueUrl": "{Ref:" + dlqID + "}",
				"FunctionName":       "{Ref:" + functionID + "}",
			}
			for name, w := range want {
				if got, ok := s.Outputs[name]; !ok || got != w {
					t.Errorf("output %s = %v (present: %t), want %s", name, got, ok, w)
				}
			}
		})
	}
}

func TestParameterConstraints(t *testing.T) {
	t.Parallel()
	// Parameters and Rules reach CloudFormation untouched by the translator, so one translation serves every case.
	tmpl := translated(t).modes[0]
	with := func(kv ...string) map[string]string {
		p := map[string]string{"ZegoSecretArn": testSecretArn}
		for i := 0; i+1 < len(kv); i += 2 {
			p[kv[i]] = kv[i+1]
		}
		return p
	}
	for name, params := range map[string]map[string]string{
		"secret wildcard":           with("ZegoSecretArn", "*"),
		"secret ARN without suffix": with("ZegoSecretArn", "arn:aws:secretsmanager:us-east-1:123456789012:secret:zim-deleteconv/zego"),
		"secret name only":          with("ZegoSecretArn", "zim-deleteconv/zego"),
		"secret ARN wildcard":       with("ZegoSecretArn", "arn:aws:secretsmanager:us-east-1:123456789012:secret:*"),
		"no secret":                 {},
		"KMS wildcard":              with("KmsKeyArn", "*"),
		"KMS alias":                 with("KmsKeyArn", "arn:aws:kms:us-east-1:123456789012:alias/zego"),
		"plain HTTP ZEGO URL":       with("ZegoApiUrl", "http://zim-api.zego.im"),
		"unknown ZEGO host":         with("ZegoApiUrl", "https://example.com"),
		"budget over 20":            with("RateBudget", "21"),
		"budget zero":               with("RateBudget", "0"),
		"one instance":              with("MaxConcurrency", "1"), // SQS MaximumConcurrency cannot go below 2
		"JWT without issuer":        with("AuthMode", "JWT", "JwtAudience", "client"),
		"JWT without audience":      with("AuthMode", "JWT", "JwtIssuer", testIssuer),
		"JWT issuer over HTTP":      with("AuthMode", "JWT", "JwtIssuer", "http://issuer.example", "JwtAudience", "c"),
		"bad secret TTL":            with("SecretTtl", "5 minutes"),
		"unknown log level":         with("LogLevel", "trace"),
		"four receives":             with("MaxReceiveCount", "4"),
	} {
		_, err := deploy(tmpl, params)
		var refused *refusedError
		if !errors.As(err, &refused) {
			t.Errorf("%s: %v deploys (err %v); CloudFormation must refuse it", name, params, err)
		}
	}
}

// function returns the deployed function, which must keep its logical id (the Makefile target is named after it).
func function(t *testing.T, s *stack) resource {
	t.Helper()
	fns := s.ofType("AWS::Lambda::Function")
	if len(fns) != 1 || fns[0] != functionID {
		t.Fatalf("functions %v, want exactly %s", fns, functionID)
	}
	return s.Resources[functionID]
}

// sqsQueues returns the queue feeding the function and the dead-letter queue it redrives to.
func sqsQueues(t *testing.T, s *stack) (queueID, dlqID string) {
	t.Helper()
	esms := s.ofType("AWS::Lambda::EventSourceMapping")
	if len(esms) != 1 {
		t.Fatalf("event source mappings %v, want exactly one (the queue)", esms)
	}
	queueID = getAttOf(t, s, "EventSourceArn", s.Resources[esms[0]].Properties["EventSourceArn"], "AWS::SQS::Queue", "Arn")
	redrive := asMap(s.Resources[queueID].Properties["RedrivePolicy"])
	dlqID = getAttOf(t, s, "queue RedrivePolicy.deadLetterTargetArn", redrive["deadLetterTargetArn"], "AWS::SQS::Queue", "Arn")
	return queueID, dlqID
}

// getAttOf checks that v, the value of what, is {GetAtt:<id>.<attr>} of a resource of type typ and returns the id.
func getAttOf(t *testing.T, s *stack, what string, v any, typ, attr string) string {
	t.Helper()
	str, _ := v.(string)
	id, ok := strings.CutPrefix(str, "{GetAtt:")
	id, ok2 := strings.CutSuffix(id, "."+attr+"}")
	if !ok || !ok2 || s.Resources[id].Type != typ {
		t.Fatalf("%s is %v, want the %s of a deployed %s", what, v, attr, typ)
	}
	return id
}

// refOf checks that v, the value of what, is {Ref:<id>} of a resource of type typ and returns the id.
func refOf(t *testing.T, s *stack, what string, v any, typ string) string {
	t.Helper()
	str, _ := v.(string)
	id, ok := strings.CutPrefix(str, "{Ref:")
	id, ok2 := strings.CutSuffix(id, "}")
	if !ok || !ok2 || s.Resources[id].Type != typ {
		t.Fatalf("%s is %v, want a Ref to a deployed %s", what, v, typ)
	}
	return id
}

// statements returns a policy document's statements (a single statement may be written without a list).
func statements(doc map[string]any) []map[string]any {
	var out []map[string]any
	for _, st := range list(doc["Statement"]) {
		out = append(out, asMap(st))
	}
	return out
}

// list reads a policy field that may be one value or a list of values.
func list(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []any{v}
}
