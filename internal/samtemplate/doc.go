// Package samtemplate holds the offline checks of the deployment template (template.yaml at the repository root).
//
// There is no AWS account, SAM CLI or Docker in the test path, so the tests do what can be done offline:
//
//   - cfn-lint validates template.yaml (through the SAM transform) and must report nothing.
//   - The SAM translator (python3's samtranslator, the code CloudFormation runs for
//     AWS::Serverless-2016-10-31) turns template.yaml into plain CloudFormation, once per parameter set that
//     matters: IAM or JWT authorisation, with or without a customer managed KMS key and an alarm topic, and every
//     allowed (MaxConcurrency, RateBudget) pair.
//   - A small evaluator does what CloudFormation does at deploy time for the parts that matter: it checks the
//     parameters against their constraints, evaluates Rules (a refused parameter set is never deployed), evaluates
//     Conditions, drops resources whose condition is false, and resolves Ref, Fn::If, Fn::FindInMap, Fn::Select,
//     Fn::Split, Fn::Join and Fn::Sub. References to resources stay symbolic ("{Ref:Queue}",
//     "{GetAtt:Queue.Arn}") so that wiring can be asserted.
//
// The assertions are the deployment's promises: runtime provided.al2023 on arm64 with Handler bootstrap built by
// the Makefile, partial batch failures, redrive to a dead-letter queue with an alarm, visibility timeout of at least
// six function timeouts, encrypted TLS-only queues, an authorised (never anonymous) HTTP route, a least-privilege
// function role, and the ZEGO rate budget: at most 20 DeleteConv requests per second for the whole stack.
//
// python3 with samtranslator and cfn-lint ship in the machine image; when they are missing the tests fail with a
// message that says so, they are never skipped.
package samtemplate
