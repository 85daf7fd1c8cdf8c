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

// contractEnv is every environment variable the function contract and the shared design define that the template
// may set. ZEGO_RATE_LIMIT is not among them: it is the static rate of a function without the state table.
var contractEnv = []string{"ZEGO_SECRET_ID", "ZEGO_API_URL", "ZEGO_JOB_QUEUE_URL", "ZEGO_SECRET_TTL", "LOG_LEVEL",
	"ZEGO_CALLER_CLAIM", "ZEGO_STATE_TABLE", "ZEGO_RATE_BUDGET", "ZEGO_RATE_FLOOR", "ZEGO_RATE_FLOOR_TOTAL",
	"ZEGO_DEAD_LETTER_QUEUE_URL", "ZEGO_BACKOFF_BASE", "ZEGO_BACKOFF_MAX",
	"AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_DYNAMODB"}

// perFunctionEnv is what each function sets for itself: its rate floor, and the queue's own settings. Everything
// else is the same for both (one bootstrap serves every trigger).
var perFunctionEnv = map[string][]string{
	apiFunctionID:   {"ZEGO_RATE_FLOOR"},
	queueFunctionID: {"ZEGO_RATE_FLOOR", "ZEGO_DEAD_LETTER_QUEUE_URL", "ZEGO_BACKOFF_BASE", "ZEGO_BACKOFF_MAX"},
}

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
		tableID, dlqID := stateTable(t, s), deadLetterQueue(t, s)
		// Per function: the budget's floor (1/s of its own for each ApiFunction instance, none for the queue's),
		// and the queue's dead-letter queue and backoff.
		own := map[string]map[string]string{
			apiFunctionID: {"ZEGO_RATE_FLOOR": "1"},
			queueFunctionID: {"ZEGO_RATE_FLOOR": "0", "ZEGO_DEAD_LETTER_QUEUE_URL": "{Ref:" + dlqID + "}",
				"ZEGO_BACKOFF_BASE": s.Params["BackoffBase"], "ZEGO_BACKOFF_MAX": s.Params["BackoffMax"]},
		}
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
			want := map[string]string{"ZEGO_SECRET_ID": testSecretArn, "ZEGO_API_URL": "https://zim-api.zego.im",
				"ZEGO_SECRET_TTL": "5m", "LOG_LEVEL": "info", "ZEGO_JOB_QUEUE_URL": "{Ref:" + queueID + "}",
				// The shared budget: the table, the whole stack's budget, and the sum of every instance's floor,
				// ApiConcurrency x 1 + 2 x 0 (TestRateBudget).
				"ZEGO_STATE_TABLE": "{Ref:" + tableID + "}", "ZEGO_RATE_BUDGET": s.Params["RateBudget"],
				"ZEGO_RATE_FLOOR_TOTAL": s.Params["ApiConcurrency"],
				// Declared empty, for sam local's env-vars file.
				"AWS_ENDPOINT_URL_SECRETS_MANAGER": "", "AWS_ENDPOINT_URL_SQS": "", "AWS_ENDPOINT_URL_DYNAMODB": ""}
			maps.Copy(want, own[id])
			for name, want := range want {
				if got, ok := env[name]; !ok || scalar(got) != want {
					t.Errorf("%s: %s = %v (set: %t), want %q", id, name, got, ok, want)
				}
			}
			// With the table, ZEGO_RATE_LIMIT would be ignored, and without it a static rate per instance could
			// not add up to RateBudget: the template sets no static rate.
			if v, ok := env["ZEGO_RATE_LIMIT"]; ok {
				t.Errorf("%s: ZEGO_RATE_LIMIT = %v; the template sets the shared budget instead", id, v)
			}
			// In IAM mode an empty or missing claim must leave callers unchecked against a JWT claim.
			if got := scalar(env["ZEGO_CALLER_CLAIM"]); got != c.params["JwtCallerClaim"] {
				t.Errorf("%s: ZEGO_CALLER_CLAIM %q, want %q", id, got, c.params["JwtCallerClaim"])
			}
		}
		// One bootstrap for every trigger: which function it runs as changes only its floor and the queue's own
		// settings.
		apiEnv, queueEnv := environment(api), environment(queue)
		for id, env := range map[string]map[string]any{apiFunctionID: apiEnv, queueFunctionID: queueEnv} {
			for _, name := range perFunctionEnv[id] {
				delete(env, name)
			}
		}
		if !maps.EqualFunc(apiEnv, queueEnv, func(a, b any) bool { return scalar(a) == scalar(b) }) {
			t.Errorf("the functions' environments differ in more than %v:\n%v\n%v", perFunctionEnv, apiEnv, queueEnv)
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
		// The queue keeps messages as long as SQS allows (14 days): a failing record's receives, MaxReceiveCount
		// x up to BackoffMax, must end in the dead-letter queue before it expires here, for every setting an
		// operator may choose (TestBackoffOutlastsAnOutage checks the defaults' 15 hours).
		if queueRetention != 1209600 {
			t.Errorf("queue MessageRetentionPeriod %v, want SQS's longest, 14 days (1209600 s): a record that is still "+
				"backing off when it expires is dropped without reaching the dead-letter queue", queueRetention)
		}
		// A moved message keeps its enqueue time: the dead-letter queue must keep it at least as long as the
		// queue would have (TestBackoffOutlastsAnOutage checks what is left after the move).
		if dlqRetention := number(dlq["MessageRetentionPeriod"]); dlqRetention != 1209600 || !(queueRetention <= dlqRetention) {
			t.Errorf("retention: queue %v, dead-letter queue %v; want 14 days for the dead-letter queue and no more for the "+
				"queue (a moved message keeps its enqueue time)", queueRetention, dlq["MessageRetentionPeriod"])
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

		// The job status routes (issue 18): GET only, authorised exactly like the delete route, through the same
		// integration (the ApiFunction's alias).
		del := routes["ANY /conversations/delete"]
		for _, key := range jobRoutes {
			r, ok := routes[key]
			if !ok {
				t.Errorf("no route %s: job status would be API Gateway's 404", key)
				continue
			}
			for _, prop := range []string{"AuthorizationType", "AuthorizerId", "Target", "AuthorizationScopes"} {
				if fmt.Sprint(r[prop]) != fmt.Sprint(del[prop]) {
					t.Errorf("route %s: %s %v, the delete route's %v: want the same authorisation and integration", key, prop, r[prop], del[prop])
				}
			}
		}
		for key, r := range routes {
			target, _ := r["Target"].(string)
			integration := s.Resources[refOf(t, s, "route Target", strings.TrimPrefix(target, "integrations/"), "AWS::ApiGatewayV2::Integration")].Properties
			if integration["IntegrationType"] != "AWS_PROXY" || integration["PayloadFormatVersion"] != "2.0" || !invokesAPIFunction(s, integration["IntegrationUri"]) {
				t.Errorf("route %s goes to %v, want AWS_PROXY to %s with payload 2.0", key, integration, apiFunctionID)
			}
		}

		// API Gateway may invoke the ApiFunction for these routes only: every route's calls are allowed, and no
		// other path's or method's.
		var sourceArns []string
		for _, id := range s.ofType("AWS::Lambda::Permission") {
			p := s.Resources[id].Properties
			src, _ := p["SourceArn"].(string)
			if p["Principal"] != "apigateway.amazonaws.com" || !invokesAPIFunction(s, p["FunctionName"]) ||
				!strings.HasPrefix(src, "arn:aws:execute-api:us-east-1:123456789012:{Ref:"+apis[0]+"}/") {
				t.Errorf("permission %s lets %v invoke %v from %v; want API Gateway, %s, this API", id, p["Principal"],
					p["FunctionName"], p["SourceArn"], apiFunctionID)
			}
			sourceArns = append(sourceArns, src)
		}
		call := func(method, path string) string {
			return "arn:aws:execute-api:us-east-1:123456789012:{Ref:" + apis[0] + "}/$default/" + method + path
		}
		allowed := func(arn string) bool {
			return slices.ContainsFunc(sourceArns, func(pattern string) bool { return arnLike(pattern, arn) })
		}
		for _, c := range [][2]string{{"POST", "/conversations/delete"}, {"GET", "/conversations/delete"},
			{"GET", "/conversations/jobs"}, {"GET", "/conversations/jobs/0f8fad5b-d9cb-469f-a165-70867728950e"}} {
			if !allowed(call(c[0], c[1])) {
				t.Errorf("no permission lets API Gateway invoke %s for %s %s (permissions %v)", apiFunctionID, c[0], c[1], sourceArns)
			}
		}
		for _, c := range [][2]string{{"POST", "/conversations/jobs"}, {"GET", "/conversations/list"},
			{"GET", "/conversations/jobsx"}, {"GET", "/admin"}, {"POST", "/conversations/delete/x"}} {
			if allowed(call(c[0], c[1])) {
				t.Errorf("a permission lets API Gateway invoke %s for %s %s, which is no route (permissions %v)", apiFunctionID, c[0], c[1], sourceArns)
			}
		}
	})
}

// jobRoutes are the job status routes of issue 18.
var jobRoutes = []string{"GET /conversations/jobs", "GET /conversations/jobs/{jobId}"}

// arnLike matches arn against an IAM ArnLike pattern: * is any run of characters (slashes included), ? one.
func arnLike(pattern, arn string) bool {
	var re strings.Builder
	for _, r := range pattern {
		switch r {
		case '*':
			re.WriteString(".*")
		case '?':
			re.WriteString(".")
		default:
			re.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	return regexp.MustCompile("^" + re.String() + "$").MatchString(arn)
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
		dlqArn := "{GetAtt:" + deadLetterQueue(t, s) + ".Arn}"
		failedArn := "{GetAtt:" + failedInvocationsQueue(t, s) + ".Arn}"
		tableArn := "{GetAtt:" + stateTable(t, s) + ".Arn}"
		common := map[string][]string{"secretsmanager:GetSecretValue": {testSecretArn},
			// The rate budget and the job registry: single-item reads and conditional writes on the table only.
			"dynamodb:GetItem": {tableArn}, "dynamodb:PutItem": {tableArn}, "dynamodb:UpdateItem": {tableArn}}
		if key := c.params["KmsKeyArn"]; key != "" {
			common["kms:Decrypt"] = []string{key}
		}
		want := map[string]map[string][]string{
			apiFunctionID: {
				"logs:CreateLogStream": {"{GetAtt:ApiFunctionLogGroup.Arn}"},
				"logs:PutLogEvents":    {"{GetAtt:ApiFunctionLogGroup.Arn}"},
				// It hands jobs it cannot finish to the queue; Lambda sends its failed asynchronous invokes to the
				// failed-invocations queue with this role.
				"sqs:SendMessage": sorted(queueArn, failedArn),
			},
			queueFunctionID: {
				"logs:CreateLogStream":   {"{GetAtt:QueueFunctionLogGroup.Arn}"},
				"logs:PutLogEvents":      {"{GetAtt:QueueFunctionLogGroup.Arn}"},
				"sqs:ReceiveMessage":     {queueArn},
				"sqs:DeleteMessage":      {queueArn},
				"sqs:GetQueueAttributes": {queueArn},
				// A failed record's backoff.
				"sqs:ChangeMessageVisibility": {queueArn},
				// Job continuations to the same queue, records that can never succeed to the dead-letter queue,
				// failed asynchronous invokes.
				"sqs:SendMessage": sorted(queueArn, dlqArn, failedArn),
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
			if res := got["sqs:SendMessage"]; !slices.Equal(res, want[id]["sqs:SendMessage"]) {
				t.Errorf("%s may send to %v; want %v only", id, res, want[id]["sqs:SendMessage"])
			}
		}
	})
}

// sorted returns the resources in the order grants returns them.
func sorted(resources ...string) []string {
	slices.Sort(resources)
	return resources
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

// TestRateBudget deploys every combination of the grid parameters' ranges: CloudFormation refuses exactly those
// that leave the shared pool (RateBudget − the instances' floors) below 1/s, and in every other one the floors of
// all instances that can run at once plus the pool add up to exactly RateBudget ≤ 20, the floor total each
// instance is told is that sum, and the stage lets the API take the whole budget. The smallest pool the template
// accepts still finishes a big job within the job's cap on rounds.
func TestRateBudget(t *testing.T) {
	t.Parallel()
	tr := translated(t)
	accepted, minPool := 0, math.Inf(1)
	var queueTimeout float64
	for _, c := range tr.grid {
		budget, apiConcurrency := number(c.params["RateBudget"]), number(c.params["ApiConcurrency"])
		s, err := deploy(c.tmpl, c.params)
		var refused *refusedError
		switch {
		case errors.As(err, &refused):
			if budget > apiConcurrency {
				t.Errorf("%s: refused although the budget leaves a pool of %v/s beside the floors: %v", c, budget-apiConcurrency, err)
			}
			continue
		case err != nil:
			t.Fatalf("%s: %v", c, err)
		case budget <= apiConcurrency:
			t.Errorf("%s: deployed although the ApiFunction's floors take the whole budget: the queue would get nothing", c)
		}
		accepted++
		floors, totals := budgetOf(t, s)
		for id, total := range totals {
			// The function takes its pool as RateBudget − ZEGO_RATE_FLOOR_TOTAL: a total below the real floors
			// would let the stack send more than RateBudget in a second.
			if total != floors {
				t.Errorf("%s: %s has ZEGO_RATE_FLOOR_TOTAL %v, but the instances' floors add up to %v", c, id, total, floors)
			}
		}
		pool := budget - floors
		if !(pool >= 1 && floors+pool == budget && budget <= zegoBudget) {
			t.Errorf("%s: floors %v/s + pool %v/s: want a pool of at least 1/s and RateBudget <= 20 in all", c, floors, pool)
		}
		minPool = math.Min(minPool, pool)
		_, queue := functions(t, s)
		queueTimeout = number(queue.Properties["Timeout"])

		// With the queue idle the API may take the whole budget: the stage's rate is RateBudget (the budget keeps
		// ZEGO within it), and its burst lets every ApiFunction instance start a call at once and is no more than
		// a second's worth.
		stage := asMap(s.Resources[s.ofType("AWS::ApiGatewayV2::Stage")[0]].Properties["DefaultRouteSettings"])
		if rl, burst := number(stage["ThrottlingRateLimit"]), number(stage["ThrottlingBurstLimit"]); rl != budget || !(burst >= apiConcurrency && burst <= budget) {
			t.Errorf("%s: stage throttling %v/s (burst %v), want RateBudget %v/s and a burst from ApiConcurrency %v to RateBudget",
				c, rl, burst, budget, apiConcurrency)
		}
	}
	if accepted == 0 {
		t.Fatal("no combination of the grid parameters deploys")
	}
	t.Logf("%d of %d combinations deploy; the smallest pool is %v/s", accepted, len(tr.grid), minPool)

	// A lone job takes its calls from the pool (the queue's instances have no floor); the job's cap on rounds
	// must not stop a big job at the smallest pool the template accepts.
	perRound := math.Floor(minPool*rateHeadroom*(queueTimeout-roundReserve) - listCallsPerRound)
	if rounds := math.Ceil(bigJob / perRound); !(perRound > 0 && rounds <= maxRounds) {
		t.Errorf("at %v/s and a %vs timeout a round deletes %v conversations: %d conversations need %v rounds, over the "+
			"job's cap of %d", minPool, queueTimeout, perRound, bigJob, rounds, maxRounds)
	} else {
		t.Logf("smallest pool %v/s, %vs timeout: %v conversations per round, %d in %v rounds (cap %d)",
			minPool, queueTimeout, perRound, bigJob, rounds, maxRounds)
	}
}

// budgetOf returns the stack's rate floors, Σ reserved concurrency × ZEGO_RATE_FLOOR over its functions, and each
// function's ZEGO_RATE_FLOOR_TOTAL. It fails the test on a function whose budget settings the function would
// refuse or that breaks the design: RateBudget other than the parameter, a floor other than 1 (ApiFunction: HTTP
// callers are served while the table fails) or 0 (QueueFunction: queue work waits), unbounded instances.
func budgetOf(t *testing.T, s *stack) (floors float64, totals map[string]float64) {
	t.Helper()
	totals = map[string]float64{}
	wantFloor := map[string]float64{apiFunctionID: 1, queueFunctionID: 0}
	for _, id := range s.ofType("AWS::Lambda::Function") {
		fn := s.Resources[id]
		env := environment(fn)
		if got := scalar(env["ZEGO_RATE_BUDGET"]); got != s.Params["RateBudget"] || !(number(got) > 0 && number(got) <= zegoBudget) {
			t.Errorf("%s: ZEGO_RATE_BUDGET %q, want RateBudget %s in (0, 20]", id, got, s.Params["RateBudget"])
		}
		floor, want := number(env["ZEGO_RATE_FLOOR"]), wantFloor[id]
		if floor != want {
			t.Errorf("%s: ZEGO_RATE_FLOOR %v, want %v", id, env["ZEGO_RATE_FLOOR"], want)
		}
		reserved := number(fn.Properties["ReservedConcurrentExecutions"])
		if !(reserved >= 1) {
			t.Errorf("%s: reserved concurrency %v: the instances, and so their floors, are unbounded", id, fn.Properties["ReservedConcurrentExecutions"])
		}
		floors += reserved * floor
		totals[id] = number(env["ZEGO_RATE_FLOOR_TOTAL"])
	}
	return floors, totals
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
		"budget below the minimum":     with("RateBudget", "1", "ApiConcurrency", "1"),
		"no pool beside the floors":    with("RateBudget", "2", "ApiConcurrency", "2"),
		"floors over the budget":       with("ApiConcurrency", "5", "RateBudget", "4"),
		"fractional budget":            with("RateBudget", "7.5"),
		"fractional API instances":     with("ApiConcurrency", "1.5"),
		"no API instance":              with("ApiConcurrency", "0"),
		"too many API instances":       with("ApiConcurrency", "6"),
		"JWT without issuer":           with(slices.Delete(slices.Clone(jwt), 2, 4)...),
		"JWT without audience":         with(slices.Delete(slices.Clone(jwt), 4, 6)...),
		"JWT without claim":            with(slices.Delete(slices.Clone(jwt), 6, 8)...),
		"JWT issuer over HTTP":         with(append(slices.Clone(jwt), "JwtIssuer", "http://issuer.example")...),
		"bad secret TTL":               with("SecretTtl", "5 minutes"),
		"secret TTL 0s":                with("SecretTtl", "0s"),
		"secret TTL 0m":                with("SecretTtl", "0m"),
		"secret TTL 0":                 with("SecretTtl", "0"),
		"secret TTL 0h0m0s":            with("SecretTtl", "0h0m0s"),
		"secret TTL below 1ns":         with("SecretTtl", "0.5ns"),
		"secret TTL negative":          with("SecretTtl", "-5m"),
		"secret TTL overflowing":       with("SecretTtl", "9999999h"),
		"backoff base 0s":              with("BackoffBase", "0s"),
		"backoff base in ms":           with("BackoffBase", "500ms"),
		"backoff max over 11h":         with("BackoffMax", "12h"),
		"backoff max in seconds":       with("BackoffMax", "43200s"),
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
