package handler

import "testing"

func FuzzDetect(f *testing.F) {
	for _, s := range []string{
		`{"Records":[{"eventSource":"aws:sqs","body":"{}"}]}`,
		`{"version":"2.0","requestContext":{"http":{"method":"POST"}}}`,
		`{"httpMethod":"POST","requestContext":{}}`,
		`{"FromUserId":"a"}`, `{"Records":1}`, `{"version":2}`, `7`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		hs := &Handler{log: discardLogger(), jobWorkers: 1, sqsWorkers: 1, setupErr: errFuzzNoNetwork}
		// Every shape gets an answer; a recovered panic would show as InternalError.
		if _, err := hs.Invoke(t.Context(), data); err != nil && functionError(t, err).Type == "InternalError" {
			t.Fatalf("handler panicked on %q", data)
		}
	})
}
