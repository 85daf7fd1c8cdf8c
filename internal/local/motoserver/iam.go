package motoserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// moto accepts any credentials until IAM is enforced. After EnforceIAM every
// request must be signed with an access key of an IAM user created in this
// server (CreateIAMUser), and is allowed only by that user's policies: a user
// without policies is denied everything. moto then answers a denial with HTTP
// 403 and an XML body whose code is "AccessDenied", even for JSON services
// such as Secrets Manager, where AWS answers AccessDeniedException in JSON; the
// Go SDK reports it as an HTTP 403 response error without an API error code.

// EnforceIAM makes the server authenticate and authorize every later request
// (moto's /moto-api/reset-auth with INITIAL_NO_AUTH_ACTION_COUNT 0). It applies
// to the whole server: use a server of your own for it.
func (s *Server) EnforceIAM(ctx context.Context) error {
	return s.resetAuth(ctx, "0")
}

// AllowAll turns IAM enforcement off again.
func (s *Server) AllowAll(ctx context.Context) error {
	return s.resetAuth(ctx, "inf")
}

func (s *Server) resetAuth(ctx context.Context, count string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/moto-api/reset-auth", strings.NewReader(count))
	if err != nil {
		return fmt.Errorf("motoserver: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("motoserver: reset-auth: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("motoserver: reset-auth: HTTP %d: %s", resp.StatusCode, body)
	}
	return nil
}

// CreateIAMUser creates an IAM user with no policies and returns a new access
// key for it. Call it before EnforceIAM (afterwards the request itself needs
// an authorized key).
func (s *Server) CreateIAMUser(ctx context.Context, name string) (accessKeyID, secretAccessKey string, err error) {
	if err := s.iam(ctx, url.Values{"Action": {"CreateUser"}, "UserName": {name}}, nil); err != nil {
		return "", "", err
	}
	var out struct {
		AccessKeyID     string `xml:"CreateAccessKeyResult>AccessKey>AccessKeyId"`
		SecretAccessKey string `xml:"CreateAccessKeyResult>AccessKey>SecretAccessKey"`
	}
	if err := s.iam(ctx, url.Values{"Action": {"CreateAccessKey"}, "UserName": {name}}, &out); err != nil {
		return "", "", err
	}
	if out.AccessKeyID == "" || out.SecretAccessKey == "" {
		return "", "", fmt.Errorf("motoserver: CreateAccessKey for %q returned no key", name)
	}
	return out.AccessKeyID, out.SecretAccessKey, nil
}

// iam sends one signed IAM Query API request and decodes the XML answer into
// out (when non-nil).
func (s *Server) iam(ctx context.Context, form url.Values, out any) error {
	form.Set("Version", "2010-05-08")
	body := form.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/", strings.NewReader(body))
	if err != nil {
		return fmt.Errorf("motoserver: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: AccessKeyID, SecretAccessKey: SecretAccessKey}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "iam", Region, time.Now()); err != nil {
		return fmt.Errorf("motoserver: signing IAM %s: %w", form.Get("Action"), err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("motoserver: IAM %s: %w", form.Get("Action"), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("motoserver: IAM %s: %w", form.Get("Action"), err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("motoserver: IAM %s: HTTP %d: %s", form.Get("Action"), resp.StatusCode, data)
	}
	if out != nil {
		if err := xml.Unmarshal(data, out); err != nil {
			return fmt.Errorf("motoserver: IAM %s: decoding the answer: %w", form.Get("Action"), err)
		}
	}
	return nil
}
