package samtemplate

import (
	"debug/elf"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/zim-deleteconv/zim-deleteconv/internal/request"
)

// The functions' logical ids: the Makefile's SAM targets and the sam local env-vars keys are named after them.
const (
	apiFunctionID   = "ApiFunction"
	queueFunctionID = "QueueFunction"
)

// zegoBudget is ZEGO's DeleteConv limit: requests per second per AppId, across every caller.
const zegoBudget = 20.0

// The job's bounds: a job stops after maxRounds rounds (the job's cap), and the template must let it finish bigJob
// conversations at the slowest queue instance it accepts. Each round lists what ZEGO shows (the latest 1000
// conversations, pages of 500) through the same limiter, which spaces requests at rateHeadroom of the rate
// (pkg/zim), and stops roundReserve seconds before the deadline (the handler's reserve).
const (
	maxRounds         = request.MaxRounds
	bigJob            = 100000
	listCallsPerRound = 2
	rateHeadroom      = 0.97
	roundReserve      = 1.0
)

// contractEnv is every environment variable the function contract defines that the template may set.
var contractEnv = []string{"ZEGO_SECRET_ID", "ZEGO_API_URL", "ZEGO_RATE_LIMIT", "ZEGO_JOB_QUEUE_URL",
	"ZEGO_SECRET_TTL", "LOG_LEVEL", "ZEGO_CALLER_CLAIM", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL_SQS"}

// TestSamBuildTargets runs what sam build runs for each function (BuildMethod makefile: make build-<LogicalId> with
// ARTIFACTS_DIR set) and checks that it writes an arm64 Linux bootstrap there.
func TestSamBuildTargets(t *testing.T) {
	t.Parallel()
	src := translated(t).source
	globals := asMap(asMap(src["Globals"])["Function"])
	for _, id := range []string{apiFunctionID, queueFunctionID} {
		fn := asMap(asMap(src["Resources"])[id])
		if fn["Type"] != "AWS::Serverless::Function" {
			t.Fatalf("%s: Type %v, want AWS::Serverless::Function", id, fn["Type"])
		}
		if got := asMap(fn["Metadata"])["BuildMethod"]; got != "makefile" {
			t.Errorf("%s: Metadata.BuildMethod %v, want makefile (the Makefile passes -tags lambda.norpc and -ldflags)", id, got)
		}
		for prop, want := range map[string]string{"CodeUri": ".", "Handler": "bootstrap"} {
			got, ok := asMap(fn["Properties"])[prop]
			if !ok {
				got = globals[prop]
			}
			// sam build runs make inside CodeUri, and the Makefile builds ./functions/deleteconv from the root.
			if got != want {
				t.Errorf("%s: %s %v, want %s", id, prop, got, want)
			}
		}
		dir := t.TempDir()
		cmd := exec.Command("make", "build-"+id, "ARTIFACTS_DIR="+dir)
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make build-%s: %v\n%s", id, err, out)
		}
		f, err := elf.Open(filepath.Join(dir, "bootstrap"))
		if err != nil {
			t.Fatalf("make build-%s wrote no ELF bootstrap into ARTIFACTS_DIR: %v", id, err)
		}
		if f.Machine != elf.EM_AARCH64 || f.Class != elf.ELFCLASS64 || f.Type != elf.ET_EXEC {
			t.Errorf("make build-%s: bootstrap is %v %v %v, want a 64-bit arm64 executable", id, f.Class, f.Machine, f.Type)
		}
		f.Close()
	}
}

func TestFunctions(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, c modeCase, s *stack) {
		api, queue := functions(t, s)
		queueID := consumedQueue(t, s)
		for id, fn := range map[string]resource{apiFunctionID: api, queueFunctionID: queue} {
			for prop, want := range map[string]any{"Runtime": "provided.al2023", "Handler": "bootstrap",
				"Architectures": []any{"arm64"}} {
				if got := fn.Properties[prop]; fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s: %s %v, want %v", id, prop, got, want)
				}
			}
			logging := asMap(fn.Properties["LoggingConfig"])
			// Lambda counts a line without "level" (an EMF metric line) as INFO; a WARN or ERROR filter would drop
			// the metrics, and INFO would drop LOG_LEVEL=debug lines. LOG_LEVEL must be the only filter.
			if lvl := logging["ApplicationLogLevel"]; logging["LogFormat"] != "JSON" || lvl != "TRACE" && lvl != "DEBUG" {
				t.Errorf("%s: LoggingConfig %v, want LogFormat JSON and ApplicationLogLevel TRACE (LOG_LEVEL filters)", id, logging)
			}
			if _, ok := fn.Properties["ReservedConcurrentExecutions"]; !ok {
				t.Errorf("%s: no ReservedConcurrentExecutions: its instances, and so its requests to ZEGO, are unbounded", id)
			}

			env := environment(fn)
			for name := range env {
				if !slices.Contains(contractEnv, name) {
					t.Errorf("%s: environment variable %s is not in the function contract", id, name)
				}
			}
			for name, want := range map[string]string{"ZEGO_SECRET_ID": testSecretArn, "ZEGO_API_URL": "https://zim-api.zego.im",
				"ZEGO_SECRET_TTL": "5m", "LOG_LEVEL": "info", "ZEGO_JOB_QUEUE_URL": "{Ref:" + queueID + "}"} {
				if got, ok := env[name]; !ok || scalar(got) != want {
					t.Errorf("%s: %s = %v (set: %t), want %q", id, name, got, ok, want)
				}
			}
			// In IAM mode an empty or missing claim must leave callers unchecked against a JWT claim.
			if got := scalar(env["ZEGO_CALLER_CLAIM"]); got != c.params["JwtCallerClaim"] {
				t.Errorf("%s: ZEGO_CALLER_CLAIM %q, want %q", id, got, c.params["JwtCallerClaim"])
			}
		}
		// One bootstrap for every trigger: which function it runs as changes only its rate share.
		apiEnv, queueEnv := environment(api), environment(queue)
		delete(apiEnv, "ZEGO_RATE_LIMIT")
		delete(queueEnv, "ZEGO_RATE_LIMIT")
		if !maps.EqualFunc(apiEnv, queueEnv, func(a, b any) bool { return scalar(a) == scalar(b) }) {
			t.Errorf("the functions' environments differ in more than ZEGO_RATE_LIMIT:\n%v\n%v", apiEnv, queueEnv)
		}
		if asMap(api.Properties["LoggingConfig"])["LogGroup"] == asMap(queue.Properties["LoggingConfig"])["LogGroup"] {
			t.Errorf("both functions log to %v: give each its own log group", asMap(api.Properties["LoggingConfig"])["LogGroup"])
		}

		// Separate capacity: no function has both an SQS event source and an API Gateway trigger.
		for id := range map[string]bool{apiFunctionID: true, queueFunctionID: true} {
			queues, http := triggers(s, id)
			if len(queues) > 0 && http {
				t.Errorf("%s has both an SQS event source %v and an API Gateway trigger: a queue backlog would take "+
					"the instances HTTP callers need, and HTTP traffic would throttle queue deliveries", id, queues)
			}
		}
		if queues, http := triggers(s, apiFunctionID); len(queues) > 0 || !http {
			t.Errorf("%s: event sources %v, API Gateway trigger %t; want the HTTP API only", apiFunctionID, queues, http)
		}
		if queues, http := triggers(s, queueFunctionID); fmt.Sprint(queues) != "["+queueID+"]" || http {
			t.Errorf("%s: event sources %v, API Gateway trigger %t; want the queue only", queueFunctionID, queues, http)
		}

		// A function that sends to the queue it consumes is a Lambda -> SQS -> Lambda loop, which Lambda stops after
		// about 16 rounds unless RecursiveLoop is Allow. The QueueFunction does (job continuations; TestRoles).
		for id, fn := range map[string]resource{apiFunctionID: api, queueFunctionID: queue} {
			queues, _ := triggers(s, id)
			for _, q := range queues {
				if slices.Contains(grants(t, s, fn)["sqs:SendMessage"], "{GetAtt:"+q+".Arn}") && fn.Properties["RecursiveLoop"] != "Allow" {
					t.Errorf("%s sends to %s, which it consumes, with RecursiveLoop %v: Lambda would stop its jobs after "+
						"about 16 rounds; want Allow", id, q, fn.Properties["RecursiveLoop"])
				}
			}
		}
	})
}

func TestQueue(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, c modeCase, s *stack) {
		_, queue := functions(t, s)
		esm := s.Resources[s.ofType("AWS::Lambda::EventSourceMapping")[0]].Properties
		if !slices.Contains(asList(esm["FunctionResponseTypes"]), any("ReportBatchItemFailures")) {
			t.Errorf("FunctionResponseTypes %v: without ReportBatchItemFailures a failed record retries the whole batch",
				esm["FunctionResponseTypes"])
		}
		// Never more concurrent batches than instances: a throttled delivery spends a receive of each message.
		mc, reserved := number(asMap(esm["ScalingConfig"])["MaximumConcurrency"]), number(queue.Properties["ReservedConcurrentExecutions"])
		if mc != reserved || mc < 2 {
			t.Errorf("SQS ScalingConfig.MaximumConcurrency %v, reserved concurrency %v: want them equal and at least 2 "+
				"(the SQS minimum)", mc, reserved)
		}

		queueID := consumedQueue(t, s)
		q := s.Resources[queueID].Properties
		timeout, window := number(queue.Properties["Timeout"]), math.Max(0, number(esm["MaximumBatchingWindowInSeconds"]))
		if vis := number(q["VisibilityTimeout"]); !(vis >= 6*timeout+window) {
			t.Errorf("queue VisibilityTimeout %v < 6 x %s Timeout %v + batching window %v (AWS's advice): records "+
				"still being processed come back", q["VisibilityTimeout"], queueFunctionID, timeout, window)
		}
		redrive := asMap(q["RedrivePolicy"])
		dlqID := getAttOf(t, s, "RedrivePolicy.deadLetterTargetArn", redrive["deadLetterTargetArn"], "AWS::SQS::Queue", "Arn")
		if dlqID == queueID || scalar(redrive["maxReceiveCount"]) != s.Params["MaxReceiveCount"] {
			t.Errorf("RedrivePolicy %v, want the dead-letter queue after MaxReceiveCount (%s) receives", redrive, s.Params["MaxReceiveCount"])
		}
		dlq := s.Resources[dlqID].Properties
		queueRetention := 345600.0 // the SQS default, 4 days
		if v, ok := q["MessageRetentionPeriod"]; ok {
			queueRetention = number(v)
		}
		if number(dlq["MessageRetentionPeriod"]) != 1209600 || !(queueRetention < 1209600) {
			t.Errorf("retention: queue %v, dead-letter queue %v; want 14 days for the dead-letter queue and less for the "+
				"queue (a redriven message keeps its enqueue time and would expire at once)", queueRetention, dlq["MessageRetentionPeriod"])
		}
		for _, id := range s.ofType("AWS::SQS::Queue") {
			if p := s.Resources[id].Properties; p["SqsManagedSseEnabled"] != true && p["KmsMasterKeyId"] == nil {
				t.Errorf("queue %s is not encrypted at rest (SqsManagedSseEnabled or KmsMasterKeyId)", id)
			}
			if !deniesInsecureTransport(s, id) {
				t.Errorf("queue %s has no queue policy denying requests without TLS (aws:SecureTransport false)", id)
			}
		}

		var alarmed bool
		for _, id := range s.ofType("AWS::CloudWatch::Alarm") {
			a := s.Resources[id].Properties
			dims := asList(a["Dimensions"])
			if a["Namespace"] != "AWS/SQS" || a["MetricName"] != "ApproximateNumberOfMessagesVisible" || len(dims) != 1 ||
				asMap(dims[0])["Value"] != "{GetAtt:"+dlqID+".QueueName}" {
				continue
			}
			alarmed = a["ComparisonOperator"] == "GreaterThanThreshold" && number(a["Threshold"]) == 0
			want := []any{}
			if topic := c.params["AlarmTopicArn"]; topic != "" {
				want = append(want, topic)
			}
			if fmt.Sprint(asList(a["AlarmActions"])) != fmt.Sprint(want) {
				t.Errorf("alarm %s actions %v, want %v", id, a["AlarmActions"], want)
			}
		}
		if !alarmed {
			t.Errorf("no alarm on the first message in the dead-letter queue %s", dlqID)
		}
	})
}

// deniesInsecureTransport reports whether a queue policy of queue id denies every SQS action without TLS.
func deniesInsecureTransport(s *stack, id string) bool {
	for _, pid := range s.ofType("AWS::SQS::QueuePolicy") {
		p := s.Resources[pid].Properties
		if !slices.Contains(asList(p["Queues"]), any("{Ref:"+id+"}")) {
			continue
		}
		for _, st := range statements(asMap(p["PolicyDocument"])) {
			if st["Effect"] == "Deny" && fmt.Sprint(st["Principal"]) == "*" &&
				slices.ContainsFunc(list(st["Action"]), func(a any) bool { return a == "sqs:*" || a == "*" }) &&
				slices.Contains(list(st["Resource"]), any("{GetAtt:"+id+".Arn}")) &&
				scalar(asMap(asMap(st["Condition"])["Bool"])["aws:SecureTransport"]) == "false" {
				return true
			}
		}
	}
	return false
}

func TestHTTPAPI(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, c modeCase, s *stack) {
		api, _ := functions(t, s)
		if ids := append(s.ofType("AWS::ApiGateway::RestApi"), s.ofType("AWS::Lambda::Url")...); len(ids) > 0 {
			t.Errorf("other HTTP entry points %v: the HTTP API is the only one", ids)
		}
		apis := s.ofType("AWS::ApiGatewayV2::Api")
		if len(apis) != 1 {
			t.Fatalf("HTTP APIs %v, want one", apis)
		}
		// Target (quick create) adds an unauthorised $default route; a Body can define routes of its own.
		for _, prop := range []string{"Target", "Body", "BodyS3Location"} {
			if _, ok := s.Resources[apis[0]].Properties[prop]; ok {
				t.Errorf("HTTP API has %s: routes must come only from AWS::ApiGatewayV2::Route", prop)
			}
		}

		// Every route is authorised: anonymous traffic could hold the function's reserved concurrency.
		routes := map[string]map[string]any{} // by route key
		for _, id := range s.ofType("AWS::ApiGatewayV2::Route") {
			r := s.Resources[id].Properties
			routes[scalar(r["RouteKey"])] = r
			switch typ := r["AuthorizationType"]; {
			case c.params["AuthMode"] != "JWT" && (typ != "AWS_IAM" || r["AuthorizerId"] != nil):
				t.Errorf("IAM mode: route %v has AuthorizationType %v, AuthorizerId %v; want AWS_IAM", r["RouteKey"], typ, r["AuthorizerId"])
			case c.params["AuthMode"] == "JWT":
				if typ != "JWT" {
					t.Errorf("JWT mode: route %v has AuthorizationType %v, want JWT", r["RouteKey"], typ)
					continue
				}
				a := s.Resources[refOf(t, s, "route AuthorizerId", r["AuthorizerId"], "AWS::ApiGatewayV2::Authorizer")].Properties
				jwt := asMap(a["JwtConfiguration"])
				if a["AuthorizerType"] != "JWT" || jwt["Issuer"] != c.params["JwtIssuer"] ||
					fmt.Sprint(jwt["Audience"]) != fmt.Sprint(strings.Split(c.params["JwtAudience"], ",")) ||
					!slices.Contains(asList(a["IdentitySource"]), any("$request.header.Authorization")) {
					t.Errorf("authorizer %v, want JWT from the Authorization header, issuer %s, audience %s", a,
						c.params["JwtIssuer"], c.params["JwtAudience"])
				}
			}
		}

		// Every method on the path reaches the function, which answers 405 with Allow: POST to all but POST.
		for _, method := range []string{"POST", "GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"} {
			r, ok := routes[method+" /conversations/delete"]
			if !ok {
				r, ok = routes["ANY /conversations/delete"]
			}
			if !ok {
				t.Errorf("no route for %s /conversations/delete: API Gateway would answer its own 404 instead of the function's 405", method)
				continue
			}
			target, _ := r["Target"].(string)
			integration := s.Resources[refOf(t, s, "route Target", strings.TrimPrefix(target, "integrations/"), "AWS::ApiGatewayV2::Integration")].Properties
			if integration["IntegrationType"] != "AWS_PROXY" || integration["PayloadFormatVersion"] != "2.0" ||
				!invokesAPIFunction(s, integration["IntegrationUri"]) {
				t.Errorf("%s /conversations/delete goes to %v, want AWS_PROXY to %s with payload 2.0", method, integration, apiFunctionID)
			}
			integrationTimeout := 30000.0
			if v, ok := integration["TimeoutInMillis"]; ok {
				integrationTimeout = number(v)
			}
			if ms := 1000 * number(api.Properties["Timeout"]); !(ms < integrationTimeout) {
				t.Errorf("%s Timeout %vs is not below the integration timeout %vms: HTTP callers would get API Gateway's "+
					"timeout instead of the function's 504", apiFunctionID, api.Properties["Timeout"], integrationTimeout)
			}
		}

		// API Gateway may invoke the ApiFunction for this path only.
		for _, id := range s.ofType("AWS::Lambda::Permission") {
			p := s.Resources[id].Properties
			if src, _ := p["SourceArn"].(string); p["Principal"] != "apigateway.amazonaws.com" || !invokesAPIFunction(s, p["FunctionName"]) ||
				!strings.Contains(src, "{Ref:"+apis[0]+"}/") || !strings.HasSuffix(src, "/conversations/delete") {
				t.Errorf("permission %s lets %v invoke %v from %v; want API Gateway, %s, this API's /conversations/delete",
					id, p["Principal"], p["FunctionName"], p["SourceArn"], apiFunctionID)
			}
		}
	})
}

// invokesAPIFunction reports whether v names the ApiFunction.
func invokesAPIFunction(s *stack, v any) bool { return namesFunction(s, scalar(v), apiFunctionID) }

// namesFunction reports whether v names the function id: its ARN, a Ref to
// it, or its alias (AutoPublishAlias), which provisioned instances serve: a Ref
// to the alias or the function's ARN qualified with the alias's name.
func namesFunction(s *stack, v, id string) bool {
	if v == "{GetAtt:"+id+".Arn}" || v == "{Ref:"+id+"}" {
		return true
	}
	isAlias := func(r resource) bool {
		return r.Type == "AWS::Lambda::Alias" && scalar(r.Properties["FunctionName"]) == "{Ref:"+id+"}"
	}
	if name, ok := strings.CutPrefix(v, "{GetAtt:"+id+".Arn}:"); ok {
		for _, a := range s.ofType("AWS::Lambda::Alias") {
			if r := s.Resources[a]; isAlias(r) && scalar(r.Properties["Name"]) == name {
				return true
			}
		}
		return false
	}
	ref, ok := strings.CutPrefix(v, "{Ref:")
	if !ok {
		return false
	}
	r, ok := s.Resources[strings.TrimSuffix(ref, "}")]
	return ok && isAlias(r)
}

func TestRoles(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, c modeCase, s *stack) {
		api, queue := functions(t, s)
		queueArn := "{GetAtt:" + consumedQueue(t, s) + ".Arn}"
		common := map[string][]string{"secretsmanager:GetSecretValue": {testSecretArn}}
		if key := c.params["KmsKeyArn"]; key != "" {
			common["kms:Decrypt"] = []string{key}
		}
		want := map[string]map[string][]string{
			apiFunctionID: {
				"logs:CreateLogStream": {"{GetAtt:ApiFunctionLogGroup.Arn}"},
				"logs:PutLogEvents":    {"{GetAtt:ApiFunctionLogGroup.Arn}"},
				// It hands jobs it cannot finish to the queue.
				"sqs:SendMessage": {queueArn},
			},
			queueFunctionID: {
				"logs:CreateLogStream":   {"{GetAtt:QueueFunctionLogGroup.Arn}"},
				"logs:PutLogEvents":      {"{GetAtt:QueueFunctionLogGroup.Arn}"},
				"sqs:ReceiveMessage":     {queueArn},
				"sqs:DeleteMessage":      {queueArn},
				"sqs:GetQueueAttributes": {queueArn},
				// Job continuations, to the same queue only.
				"sqs:SendMessage": {queueArn},
			},
		}
		roles := map[any]string{}
		for id, fn := range map[string]resource{apiFunctionID: api, queueFunctionID: queue} {
			if other, ok := roles[fn.Properties["Role"]]; ok {
				t.Errorf("%s and %s share the role %v: give each its own", id, other, fn.Properties["Role"])
			}
			roles[fn.Properties["Role"]] = id
			maps.Copy(want[id], common)
			got := grants(t, s, fn)
			if !maps.EqualFunc(got, want[id], slices.Equal) {
				t.Errorf("%s may do\n  %v\nwant exactly\n  %v", id, got, want[id])
			}
			if res := got["sqs:SendMessage"]; !slices.Equal(res, []string{queueArn}) {
				t.Errorf("%s may send to %v; want the job queue %s only", id, res, queueArn)
			}
		}
	})
}

// grants returns what fn's role allows, action -> sorted resources, and fails on a statement that is not scoped:
// a wildcard, NotAction, NotResource, a managed policy, a trust beyond Lambda, or kms:Decrypt outside Secrets
// Manager.
func grants(t *testing.T, s *stack, fn resource) map[string][]string {
	t.Helper()
	roleID := getAttOf(t, s, "function Role", fn.Properties["Role"], "AWS::IAM::Role", "Arn")
	role := s.Resources[roleID].Properties
	for _, st := range statements(asMap(role["AssumeRolePolicyDocument"])) {
		if fmt.Sprint(asMap(st["Principal"])) != "map[Service:lambda.amazonaws.com]" {
			t.Errorf("role %s trusts %v, want lambda.amazonaws.com only", roleID, st["Principal"])
		}
	}
	if arns := asList(role["ManagedPolicyArns"]); len(arns) > 0 {
		t.Errorf("role %s has managed policies %v: write the permissions out, scoped", roleID, arns)
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
	out := map[string][]string{}
	for _, st := range sts {
		if st["Effect"] != "Allow" {
			continue
		}
		if st["NotAction"] != nil || st["NotResource"] != nil {
			t.Errorf("role %s: statement %v uses NotAction or NotResource", roleID, st)
		}
		for _, a := range list(st["Action"]) {
			for _, r := range list(st["Resource"]) {
				if strings.Contains(scalar(a)+scalar(r), "*") {
					t.Errorf("role %s grants %v on %v: a wildcard", roleID, a, r)
				}
				out[scalar(a)] = append(out[scalar(a)], scalar(r))
			}
			if strings.HasPrefix(scalar(a), "kms:") && asMap(asMap(st["Condition"])["StringEquals"])["kms:ViaService"] !=
				"secretsmanager."+pseudoParams["AWS::Region"]+".amazonaws.com" {
				t.Errorf("role %s: %v is not limited to Secrets Manager (kms:ViaService)", roleID, a)
			}
		}
	}
	for a := range out {
		slices.Sort(out[a])
		out[a] = slices.Compact(out[a])
	}
	return out
}

// TestRateBudget deploys every combination of the grid parameters' ranges: either CloudFormation refuses it
// (exactly when RateBudget is odd or < 2 x ApiConcurrency + 2, as documented), or the functions' instances together
// send exactly RateBudget <= 20 requests per second, nothing lost to rounding. The slowest queue
// instance the template accepts still finishes a big job within the job's cap on rounds.
func TestRateBudget(t *testing.T) {
	t.Parallel()
	tr := translated(t)
	accepted, minQueueRate, maxLoss := 0, math.Inf(1), 0.0
	var queueTimeout float64
	for _, c := range tr.grid {
		budget, apiConcurrency := number(c.params["RateBudget"]), number(c.params["ApiConcurrency"])
		s, err := deploy(c.tmpl, c.params)
		var refused *refusedError
		switch {
		case errors.As(err, &refused):
			if budget >= 2*apiConcurrency+2 && math.Mod(budget, 2) == 0 {
				t.Errorf("%s: refused although the budget covers the instances: %v", c, err)
			}
			continue
		case err != nil:
			t.Fatalf("%s: %v", c, err)
		case budget < 2*apiConcurrency+2:
			t.Errorf("%s: deployed although the queue's instances would get less than 1 request/second", c)
		case math.Mod(budget, 2) != 0:
			t.Errorf("%s: deployed with an odd budget, which the queue's 2 instances cannot share in whole requests/second", c)
		}
		accepted++
		fleet, rates := fleetRate(t, s)
		if !(fleet <= budget && budget <= zegoBudget) {
			t.Errorf("%s: the functions may send %v requests/second (%v), over RateBudget or ZEGO's 20", c, fleet, rates)
		}
		maxLoss = math.Max(maxLoss, budget-fleet)
		if fleet != budget {
			t.Errorf("%s: the shares add up to %v of RateBudget %v (%v): budget lost to rounding", c, fleet, budget, rates)
		}
		api, queue := functions(t, s)
		// ZEGO counts calls per second, and an instance's limiter (spacing calls at rateHeadroom of its rate) can put
		// floor(rateHeadroom × rate) + 1 of them into one second: ceil(rate) for a fraction such as 7.5.
		window := 0.0
		for id, fn := range map[string]resource{apiFunctionID: api, queueFunctionID: queue} {
			window += number(fn.Properties["ReservedConcurrentExecutions"]) * (math.Floor(rateHeadroom*rates[id]) + 1)
		}
		if window > budget {
			t.Errorf("%s: the instances' limiters may put %v calls into one second (rates %v), over RateBudget", c, window, rates)
		}
		minQueueRate = math.Min(minQueueRate, rates[queueFunctionID])
		queueTimeout = number(queue.Properties["Timeout"])
		// The stage lets through no more calls than the ApiFunction's share.
		stage := asMap(s.Resources[s.ofType("AWS::ApiGatewayV2::Stage")[0]].Properties["DefaultRouteSettings"])
		apiShare := number(api.Properties["ReservedConcurrentExecutions"]) * rates[apiFunctionID]
		if rl, burst := number(stage["ThrottlingRateLimit"]), number(stage["ThrottlingBurstLimit"]); !(rl > 0 && rl <= apiShare && burst >= 1) {
			t.Errorf("%s: stage throttling %v/s (burst %v), want 0 < rate <= the ApiFunction's %v/s", c, rl, burst, apiShare)
		}
	}
	if accepted == 0 {
		t.Fatal("no combination of the grid parameters deploys")
	}
	t.Logf("%d of %d combinations deploy; the most any loses to rounding is %v/s", accepted, len(tr.grid), maxLoss)

	s, err := deploy(tr.modes[0], modeCases[0].params)
	if err != nil {
		t.Fatalf("the defaults do not deploy: %v", err)
	}
	if fleet, rates := fleetRate(t, s); number(s.Params["RateBudget"])-fleet > 1 {
		t.Errorf("the defaults use %v of RateBudget %s requests/second (%v): more than 1/s lost", fleet, s.Params["RateBudget"], rates)
	}

	// The job's cap on rounds must not stop a big job at the slowest accepted queue instance.
	perRound := math.Floor(minQueueRate*rateHeadroom*(queueTimeout-roundReserve) - listCallsPerRound)
	if rounds := math.Ceil(bigJob / perRound); !(perRound > 0 && rounds <= maxRounds) {
		t.Errorf("at %v/s and a %vs timeout a round deletes %v conversations: %d conversations need %v rounds, over the "+
			"job's cap of %d", minQueueRate, queueTimeout, perRound, bigJob, rounds, maxRounds)
	} else {
		t.Logf("slowest queue instance %v/s, %vs timeout: %v conversations per round, %d in %v rounds (cap %d)",
			minQueueRate, queueTimeout, perRound, bigJob, rounds, maxRounds)
	}
}

// fleetRate returns the most requests per second the stack's functions may send together, Σ reserved concurrency
// × ZEGO_RATE_LIMIT, and each function's ZEGO_RATE_LIMIT.
func fleetRate(t *testing.T, s *stack) (float64, map[string]float64) {
	t.Helper()
	fleet, rates := 0.0, map[string]float64{}
	for _, id := range s.ofType("AWS::Lambda::Function") {
		fn := s.Resources[id]
		raw := scalar(environment(fn)["ZEGO_RATE_LIMIT"])
		rate, err := strconv.ParseFloat(raw, 64)
		if err != nil || !(rate > 0 && rate <= zegoBudget) {
			t.Errorf("%s: ZEGO_RATE_LIMIT %q, want a decimal in (0, 20] (the function refuses anything else)", id, raw)
		}
		reserved := number(fn.Properties["ReservedConcurrentExecutions"])
		if !(reserved >= 1) {
			t.Errorf("%s: reserved concurrency %v: the instances, and so the rate, are unbounded", id, fn.Properties["ReservedConcurrentExecutions"])
		}
		rates[id] = rate
		fleet += reserved * rate
	}
	return fleet, rates
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
	jwt := []string{"AuthMode", "JWT", "JwtIssuer", testIssuer, "JwtAudience", "client", "JwtCallerClaim", "username"}
	if _, err := deploy(tmpl, with(jwt...)); err != nil {
		t.Fatalf("a complete JWT configuration does not deploy: %v", err)
	}
	// Provisioned instances serve the HTTP API through the alias it calls; none by default.
	for _, n := range []string{"0", "1", "2"} {
		s, err := deploy(tmpl, with("ApiProvisionedConcurrency", n))
		if err != nil {
			t.Fatalf("ApiProvisionedConcurrency %s (ApiConcurrency 2) does not deploy: %v", n, err)
		}
		var got []string
		for _, id := range s.ofType("AWS::Lambda::Alias") {
			if pc, ok := asMap(s.Resources[id].Properties["ProvisionedConcurrencyConfig"])["ProvisionedConcurrentExecutions"]; ok {
				got = append(got, fmt.Sprint(number(pc)))
			}
		}
		if want := map[string]string{"0": "[]", "1": "[1]", "2": "[2]"}[n]; fmt.Sprint(got) != want {
			t.Errorf("ApiProvisionedConcurrency %s: the aliases provision %v, want %s", n, got, want)
		}
	}
	for name, params := range map[string]map[string]string{
		"secret wildcard":              with("ZegoSecretArn", "*"),
		"secret ARN without suffix":    with("ZegoSecretArn", "arn:aws:secretsmanager:us-east-1:123456789012:secret:zim-deleteconv/zego"),
		"secret name only":             with("ZegoSecretArn", "zim-deleteconv/zego"),
		"secret ARN wildcard":          with("ZegoSecretArn", "arn:aws:secretsmanager:us-east-1:123456789012:secret:*"),
		"no secret":                    {},
		"KMS wildcard":                 with("KmsKeyArn", "*"),
		"KMS alias":                    with("KmsKeyArn", "arn:aws:kms:us-east-1:123456789012:alias/zego"),
		"plain HTTP ZEGO URL":          with("ZegoApiUrl", "http://zim-api.zego.im"),
		"unknown ZEGO host":            with("ZegoApiUrl", "https://example.com"),
		"budget over 20":               with("RateBudget", "21"),
		"budget below the minimum":     with("RateBudget", "3", "ApiConcurrency", "1"),
		"no API instance":              with("ApiConcurrency", "0"),
		"too many API instances":       with("ApiConcurrency", "6"),
		"API instances over budget":    with("ApiConcurrency", "5", "RateBudget", "11"),
		"JWT without issuer":           with(slices.Delete(slices.Clone(jwt), 2, 4)...),
		"JWT without audience":         with(slices.Delete(slices.Clone(jwt), 4, 6)...),
		"JWT without claim":            with(slices.Delete(slices.Clone(jwt), 6, 8)...),
		"JWT issuer over HTTP":         with(append(slices.Clone(jwt), "JwtIssuer", "http://issuer.example")...),
		"bad secret TTL":               with("SecretTtl", "5 minutes"),
		"unknown log level":            with("LogLevel", "trace"),
		"four receives":                with("MaxReceiveCount", "4"),
		"claim with a space":           with(append(slices.Clone(jwt), "JwtCallerClaim", "zim user")...),
		"log retention not in the API": with("LogRetentionInDays", "2"),
		"provisioned above reserved":   with("ApiConcurrency", "1", "ApiProvisionedConcurrency", "2"),
		"provisioned above the range":  with("ApiConcurrency", "5", "RateBudget", "20", "ApiProvisionedConcurrency", "6"),
	} {
		var refused *refusedError
		if _, err := deploy(tmpl, params); !errors.As(err, &refused) {
			t.Errorf("%s: %v deploys (err %v); CloudFormation must refuse it", name, params, err)
		}
	}
}

// TestServerlessRepoMetadata checks what sam publish needs to list the application in the Serverless Application
// Repository: the translator ignores this metadata, and sam publish only reads it when someone publishes.
func TestServerlessRepoMetadata(t *testing.T) {
	t.Parallel()
	app := asMap(asMap(translated(t).source["Metadata"])["AWS::ServerlessRepo::Application"])
	for _, key := range []string{"Name", "Description", "Author", "SpdxLicenseId", "LicenseUrl", "ReadmeUrl",
		"Labels", "HomePageUrl", "SemanticVersion", "SourceCodeUrl"} {
		if _, ok := app[key]; !ok {
			t.Errorf("AWS::ServerlessRepo::Application has no %s", key)
		}
	}
	if d := scalar(app["Description"]); len(d) > 256 {
		t.Errorf("Description is %d characters; the Serverless Application Repository takes at most 256", len(d))
	}
	if app["SpdxLicenseId"] != "MIT" {
		t.Errorf("SpdxLicenseId %v, want MIT (LICENSE)", app["SpdxLicenseId"])
	}
	// sam package uploads these local files; they must exist beside the template.
	for _, key := range []string{"LicenseUrl", "ReadmeUrl"} {
		if st, err := os.Stat(filepath.Join("../..", scalar(app[key]))); err != nil || st.Size() == 0 {
			t.Errorf("%s %v: no such file beside template.yaml (%v)", key, app[key], err)
		}
	}
	if v := scalar(app["SemanticVersion"]); !regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`).MatchString(v) {
		t.Errorf("SemanticVersion %q is not MAJOR.MINOR.PATCH", v)
	}
	for _, key := range []string{"HomePageUrl", "SourceCodeUrl"} {
		if scalar(app[key]) != "https://github.com/zim-deleteconv/zim-deleteconv" {
			t.Errorf("%s %v, want the repository https://github.com/zim-deleteconv/zim-deleteconv", key, app[key])
		}
	}
	if labels := asList(app["Labels"]); len(labels) == 0 || len(labels) > 10 {
		t.Errorf("Labels %v: the Serverless Application Repository takes 1 to 10", labels)
	}
}

// functions returns the deployed ApiFunction and QueueFunction: exactly these two, by the logical ids the Makefile
// targets and the sam local env-vars keys are named after.
func functions(t *testing.T, s *stack) (api, queue resource) {
	t.Helper()
	if fns := s.ofType("AWS::Lambda::Function"); !slices.Equal(fns, []string{apiFunctionID, queueFunctionID}) {
		t.Fatalf("functions %v, want exactly %s and %s", fns, apiFunctionID, queueFunctionID)
	}
	return s.Resources[apiFunctionID], s.Resources[queueFunctionID]
}

func environment(fn resource) map[string]any {
	return maps.Clone(asMap(asMap(fn.Properties["Environment"])["Variables"]))
}

// triggers returns the queues whose event source mappings invoke the function id, and whether API Gateway invokes
// it (an integration or an invoke permission for API Gateway).
func triggers(s *stack, id string) (queues []string, apiGateway bool) {
	for _, esm := range s.ofType("AWS::Lambda::EventSourceMapping") {
		p := s.Resources[esm].Properties
		if namesFunction(s, scalar(p["FunctionName"]), id) {
			q, _ := strings.CutPrefix(scalar(p["EventSourceArn"]), "{GetAtt:")
			queues = append(queues, strings.TrimSuffix(q, ".Arn}"))
		}
	}
	var targets []string
	for _, r := range s.ofType("AWS::ApiGatewayV2::Integration") {
		targets = append(targets, scalar(s.Resources[r].Properties["IntegrationUri"]))
	}
	for _, r := range s.ofType("AWS::Lambda::Permission") {
		if p := s.Resources[r].Properties; p["Principal"] == "apigateway.amazonaws.com" {
			targets = append(targets, scalar(p["FunctionName"]))
		}
	}
	return queues, slices.ContainsFunc(targets, func(v string) bool { return namesFunction(s, v, id) })
}

// consumedQueue returns the queue of the one event source mapping: the QueueFunction's job queue.
func consumedQueue(t *testing.T, s *stack) string {
	t.Helper()
	esms := s.ofType("AWS::Lambda::EventSourceMapping")
	if len(esms) != 1 || s.Resources[esms[0]].Properties["FunctionName"] != "{Ref:"+queueFunctionID+"}" {
		t.Fatalf("event source mappings %v, want exactly one, the queue feeding %s", esms, queueFunctionID)
	}
	return getAttOf(t, s, "EventSourceArn", s.Resources[esms[0]].Properties["EventSourceArn"], "AWS::SQS::Queue", "Arn")
}

// getAttOf checks that v, the value of what, is {GetAtt:<id>.<attr>} of a resource of type typ and returns the id.
func getAttOf(t *testing.T, s *stack, what string, v any, typ, attr string) string {
	t.Helper()
	id, ok := strings.CutPrefix(scalar(v), "{GetAtt:")
	id, ok2 := strings.CutSuffix(id, "."+attr+"}")
	if !ok || !ok2 || s.Resources[id].Type != typ {
		t.Fatalf("%s is %v, want the %s of a deployed %s", what, v, attr, typ)
	}
	return id
}

// refOf checks that v, the value of what, is {Ref:<id>} of a resource of type typ and returns the id.
func refOf(t *testing.T, s *stack, what string, v any, typ string) string {
	t.Helper()
	id, ok := strings.CutPrefix(scalar(v), "{Ref:")
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
