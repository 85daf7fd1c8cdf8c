package secret_test

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/zim-deleteconv/zim-deleteconv/internal/secret"
)

// storedSecret stands in for *secretsmanager.Client.
type storedSecret string

func (s storedSecret) GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(string(s))}, nil
}

func ExampleCache() {
	// In the function: secretsmanager.NewFromConfig(cfg) instead of storedSecret.
	api := storedSecret(`{"AppId": "1234567890", "ServerSecret": "0123456789abcdef0123456789abcdef"}`)
	creds := secret.NewCache(api, "zego/deleteconv", 5*time.Minute)

	c, err := creds.Credentials(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	_, _ = creds.Credentials(context.Background())
	fmt.Println(c.AppID, creds.Fetches())
	// Output: 1234567890 1
}

func ExampleParse() {
	_, err := secret.Parse(`{"AppId": 1234567890, "ServerSecret": "not the right length"}`)
	fmt.Println(err)
	// Output: ServerSecret must be 32 hexadecimal characters
}
