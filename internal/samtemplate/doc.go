// Package samtemplate holds the offline checks of the deployment: template.yaml, samconfig.toml and the Makefile's
// SAM build targets, at the repository root.
//
// There is no AWS account, SAM CLI or Docker in the test path, so the tests do what can be done offline, and leave
// to the tools what the tools check:
//
//   - cfn-lint validates template.yaml through the SAM transform (resource schemas, property ranges, event source
//     settings, runtimes, references) and must report nothing.
//   - The SAM translator (python3's samtranslator, the code CloudFormation runs for AWS::Serverless-2016-10-31)
//     turns template.yaml into plain CloudFormation once per parameter set that matters: IAM or JWT authorisation,
//     with or without a customer managed KMS key and an alarm topic, and every combination of the integer
//     parameters that size the functions and the rate budget.
//   - A small evaluator then does what CloudFormation does at deploy time and neither tool does: it applies the
//     parameter constraints and the Rules (a refused parameter set is never deployed), evaluates Conditions and
//     the intrinsic functions the template uses (Ref, Fn::If, Fn::FindInMap, Fn::Select, Fn::Split, Fn::Sub,
//     Fn::GetAtt), and keeps references to resources symbolic ("{Ref:Queue}", "{GetAtt:Queue.Arn}") so that wiring
//     can be asserted.
//
// The assertions are the deployment's promises: the ZEGO rate budget for every accepted parameter combination
// (the ApiFunction instances' floors plus the state table's pool add up to RateBudget ≤ 20, and every instance is
// told the floors' sum), the state table's schema and least-privilege access to it, separate capacity for the HTTP
// API and the queue, every route authorised (the delete route and the job status routes alike) and every method
// on the delete path reaching the function, least-privilege roles, RecursiveLoop where a function continues jobs
// through its own queue, a job cap that big jobs fit in, partial batch failures, a backoff that outlasts a 6-hour
// outage before the dead-letter queue, duration parameters that accept only what the function accepts, alarms on
// the function's EMF dimensions, a dashboard whose body is valid JSON, a destination for failed asynchronous
// invokes, the Makefile targets sam build runs, and what sam local and sam publish read.
//
// python3 with samtranslator and cfn-lint ship in the machine image; when they are missing the tests fail with a
// message that says so, they are never skipped.
package samtemplate
