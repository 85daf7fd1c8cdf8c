// Command hello is cmd/perfbench's reference: the smallest aws-lambda-go
// function, which answers each event with the event itself. perfbench builds
// it exactly as the Makefile builds the real bootstrap, so the difference
// between the two is what this project adds.
package main

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(_ context.Context, event json.RawMessage) (json.RawMessage, error) {
		return event, nil
	})
}
