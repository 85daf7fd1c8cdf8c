package motoserver_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/motoserver"
)

func TestEnforceIAM(t *testing.T) {
	t.Parallel()
	srv := motoserver.StartT(t) // a server of its own: enforcement is server-wide
	ctx := t.Context()

	admin, err := srv.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	adminSM := secretsmanager.NewFromConfig(admin)
	if _, err := adminSM.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("iam-test"), SecretString: aws.String("v")}); err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	id, key, err := srv.CreateIAMUser(ctx, "no-policies")
	if err != nil {
		t.Fatalf("CreateIAMUser: %v", err)
	}
	userCfg, err := srv.AWSConfigWithCredentials(ctx, id, key)
	if err != nil {
		t.Fatal(err)
	}
	userSM := secretsmanager.NewFromConfig(userCfg)
	get := func(c *secretsmanager.Client) error {
		_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("iam-test")})
		return err
	}
	if err := get(userSM); err != nil {
		t.Fatalf("before EnforceIAM, the user's GetSecretValue failed: %v", err)
	}

	if err := srv.EnforceIAM(ctx); err != nil {
		t.Fatalf("EnforceIAM: %v", err)
	}
	for name, c := range map[string]*secretsmanager.Client{"user without policies": userSM, "unknown access key": adminSM} {
		var resp *smithyhttp.ResponseError
		if err := get(c); !errors.As(err, &resp) || resp.HTTPStatusCode() != http.StatusForbidden {
			t.Errorf("%s: GetSecretValue error = %v, want HTTP 403", name, err)
		}
	}

	if err := srv.AllowAll(ctx); err != nil {
		t.Fatalf("AllowAll: %v", err)
	}
	if err := get(adminSM); err != nil {
		t.Errorf("after AllowAll: %v", err)
	}
}
