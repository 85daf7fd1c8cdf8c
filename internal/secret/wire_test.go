package secret_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/zim-deleteconv/zim-deleteconv/internal/secret"
)

// The SDK's own decoding of Secrets Manager's JSON error answers, as AWS sends
// them, ends in the right class with the AWS error code still reachable.
func TestErrorClassesOverTheWire(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		wantClass   error
		wantCode    string // "" when the answer carries no AWS error code
		wantText    string
	}{
		{name: "not found", status: 400, body: awsError("ResourceNotFoundException", "Secrets Manager can't find the specified secret."),
			wantClass: secret.ErrConfiguration, wantCode: "ResourceNotFoundException", wantText: "check ZEGO_SECRET_ID"},
		{name: "access denied", status: 400, body: awsError("AccessDeniedException", "User: arn:aws:sts::123456789012:assumed-role/fn is not authorized to perform: secretsmanager:GetSecretValue"),
			wantClass: secret.ErrConfiguration, wantCode: "AccessDeniedException", wantText: "check the function role's secretsmanager:GetSecretValue permission on " + testSecretID},
		{name: "unknown access key", status: 400, body: awsError("UnrecognizedClientException", "The security token included in the request is invalid."),
			wantClass: secret.ErrConfiguration, wantCode: "UnrecognizedClientException", wantText: "permission"},
		{name: "cannot decrypt", status: 400, body: awsError("DecryptionFailure", "Secrets Manager can't decrypt the protected secret text using the provided KMS key."),
			wantClass: secret.ErrConfiguration, wantCode: "DecryptionFailure", wantText: "kms:Decrypt"},
		{name: "scheduled for deletion", status: 400, body: awsError("InvalidRequestException", "You can't perform this operation on the secret because it was marked for deletion."),
			wantClass: secret.ErrConfiguration, wantCode: "InvalidRequestException", wantText: "scheduled for deletion"},
		{name: "invalid parameter", status: 400, body: awsError("InvalidParameterException", "Invalid name."),
			wantClass: secret.ErrConfiguration, wantCode: "InvalidParameterException", wantText: "valid secret name or ARN"},
		{name: "throttled", status: 400, body: awsError("ThrottlingException", "Rate exceeded"),
			wantClass: secret.ErrUnavailable, wantCode: "ThrottlingException", wantText: "throttled"},
		{name: "internal error", status: 500, body: awsError("InternalServiceError", "An error occurred on the server side."),
			wantClass: secret.ErrUnavailable, wantCode: "InternalServiceError", wantText: "retry later"},
		{name: "unmodelled code", status: 400, body: awsError("SomethingNewException", "new"),
			wantClass: secret.ErrUnavailable, wantCode: "SomethingNewException", wantText: "SomethingNewException"},
		{name: "proxy error page", status: 502, contentType: "text/html", body: "<html>Bad Gateway</html>",
			wantClass: secret.ErrUnavailable, wantText: "HTTP 502"},
		{name: "XML denial (moto)", status: 403, contentType: "text/xml",
			body:      `<ErrorResponse><Errors><Error><Code>AccessDenied</Code></Error></Errors></ErrorResponse>`,
			wantClass: secret.ErrConfiguration, wantText: "access denied (HTTP 403)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if target := r.Header.Get("X-Amz-Target"); target != "secretsmanager.GetSecretValue" {
					t.Errorf("X-Amz-Target = %q", target)
				}
				var in struct{ SecretId string }
				if body, _ := io.ReadAll(r.Body); json.Unmarshal(body, &in) != nil || in.SecretId != testSecretID {
					t.Errorf("request body does not name the secret: %q", body)
				}
				ct := tt.contentType
				if ct == "" {
					ct = "application/x-amz-json-1.1"
				}
				w.Header().Set("Content-Type", ct)
				w.Header().Set("X-Amzn-RequestId", "req-1")
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			t.Cleanup(srv.Close)

			c := secret.NewCache(wireClient(srv.URL), testSecretID, time.Minute)
			_, err := c.Credentials(t.Context())
			if !errors.Is(err, tt.wantClass) {
				t.Fatalf("error = %v, want %v", err, tt.wantClass)
			}
			other := secret.ErrUnavailable
			if tt.wantClass == secret.ErrUnavailable {
				other = secret.ErrConfiguration
			}
			if errors.Is(err, other) {
				t.Errorf("error matches both classes: %v", err)
			}
			var api smithy.APIError
			switch {
			case tt.wantCode != "" && (!errors.As(err, &api) || api.ErrorCode() != tt.wantCode):
				t.Errorf("error = %v, want AWS error code %s reachable with errors.As", err, tt.wantCode)
			case tt.wantCode == "" && errors.As(err, &api):
				t.Errorf("error has AWS code %q, want none", api.ErrorCode())
			}
			if msg := err.Error(); !strings.Contains(msg, tt.wantText) || !strings.Contains(msg, testSecretID) {
				t.Errorf("error %q should contain %q and the secret id", msg, tt.wantText)
			}
		})
	}
}

func TestSuccessOverTheWire(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"ARN": testSecretID, "Name": "zego/deleteconv", "VersionId": "v1",
			"SecretString": `{"AppId": "1234567890", "ServerSecret": "` + secretA + `"}`,
		})
	}))
	t.Cleanup(srv.Close)
	c := secret.NewCache(wireClient(srv.URL), testSecretID, time.Minute)
	got, err := c.Credentials(t.Context())
	if err != nil || got != credsA {
		t.Fatalf("Credentials = AppId %d, %v; want credsA", got.AppID, err)
	}
}

// The real SDK's error for a Secrets Manager that does not answer wraps
// context.DeadlineExceeded; the Cache's error must not, so that the function
// answers 503 (nothing was sent to ZEGO) and not a ZEGO timeout.
func TestSlowSecretsManagerOverTheWire(t *testing.T) {
	t.Parallel()
	hung := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hung:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(hung); srv.Close() })

	c := secret.NewCache(wireClient(srv.URL), testSecretID, time.Minute, secret.WithFetchTimeout(200*time.Millisecond))
	_, err := c.Credentials(t.Context())
	if !errors.Is(err, secret.ErrUnavailable) {
		t.Fatalf("error = %v, want ErrUnavailable", err)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, secret.ErrConfiguration) {
		t.Errorf("error matches a context error or ErrConfiguration: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "Secrets Manager did not answer within 200ms") || !strings.Contains(msg, testSecretID) {
		t.Errorf("error %q should say Secrets Manager did not answer within 200ms and name the secret", msg)
	}
}

func awsError(code, message string) string {
	b, _ := json.Marshal(map[string]string{"__type": code, "message": message})
	return string(b)
}

// wireClient is a real Secrets Manager client for a test server, without
// retries so that error cases answer at once.
func wireClient(url string) *secretsmanager.Client {
	return secretsmanager.NewFromConfig(aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(url),
	}, func(o *secretsmanager.Options) { o.RetryMaxAttempts = 1 })
}
