package motoserver_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/motoserver"
	"github.com/zim-deleteconv/zim-deleteconv/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.Require(testenv.MotoServer)
	if os.Getenv(starterEnv) == "1" {
		runStarter() // never returns
	}
	os.Exit(m.Run())
}

// starterEnv makes the test binary a process that starts moto, prints its
// PID and waits to be killed.
const starterEnv = "MOTOSERVER_TEST_STARTER"

func runStarter() {
	s, err := motoserver.Start(context.Background())
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("moto pid", s.PID())
	select {}
}

func TestStartServesSecretsManager(t *testing.T) {
	t.Parallel()
	srv := motoserver.StartT(t)

	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Errorf("URL = %q, want http://127.0.0.1:PORT", srv.URL)
	}
	wantEnv := []string{
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + srv.URL,
		"AWS_ENDPOINT_URL_SQS=" + srv.URL,
		"AWS_ENDPOINT_URL_DYNAMODB=" + srv.URL,
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=testing",
		"AWS_SECRET_ACCESS_KEY=testing",
	}
	if got := srv.Env(); !slices.Equal(got, wantEnv) {
		t.Errorf("Env() = %q, want %q", got, wantEnv)
	}

	cfg, err := srv.AWSConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	sm := secretsmanager.NewFromConfig(cfg)
	if _, err := sm.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{
		Name:         aws.String("motoserver-test"),
		SecretString: aws.String("hello"),
	}); err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	out, err := sm.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("motoserver-test")})
	if err != nil {
		t.Fatalf("GetSecretValue: %v", err)
	}
	if got := aws.ToString(out.SecretString); got != "hello" {
		t.Errorf("SecretString = %q, want %q", got, "hello")
	}
}

func TestStopEndsProcessAndIsIdempotent(t *testing.T) {
	t.Parallel()
	srv, err := motoserver.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	pid := srv.PID()
	if pid <= 0 {
		t.Fatalf("PID() = %d", pid)
	}

	srv.Stop()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("after Stop, kill(%d, 0) = %v, want ESRCH (process gone)", pid, err)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	if resp, err := client.Get(srv.URL); err == nil {
		resp.Body.Close()
		t.Errorf("after Stop, GET %s answered %s", srv.URL, resp.Status)
	}

	done := make(chan struct{})
	go func() {
		srv.Stop()
		srv.Stop()
		close(done)
	}()
	select {
	case <-done:
	case <-t.Context().Done():
		t.Fatal("second Stop did not return")
	}
}

func TestStartFailures(t *testing.T) {
	t.Parallel()
	// A server that starts but never answers HTTP.
	silent := filepath.Join(t.TempDir(), "silent")
	if err := os.WriteFile(silent, []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    []motoserver.Option
		wantIs  error
		wantMsg string
	}{
		{
			name:    "binary missing",
			opts:    []motoserver.Option{motoserver.WithBinary("moto_server-not-installed-here")},
			wantIs:  motoserver.ErrNotFound,
			wantMsg: "pip package moto[server]",
		},
		{
			// false ignores its arguments and exits 1 at once.
			name:    "server exits before answering",
			opts:    []motoserver.Option{motoserver.WithBinary("false")},
			wantMsg: "exited before answering",
		},
		{
			name:    "server never answers",
			opts:    []motoserver.Option{motoserver.WithBinary(silent), motoserver.WithReadyTimeout(300 * time.Millisecond)},
			wantIs:  context.DeadlineExceeded,
			wantMsg: "did not answer",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, err := motoserver.Start(t.Context(), tt.opts...)
			if err == nil {
				srv.Stop()
				t.Fatal("Start succeeded, want an error")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Start error = %v, want errors.Is %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Start error = %q, want it to contain %q", err, tt.wantMsg)
			}
		})
	}
}

func TestNotFoundMessage(t *testing.T) {
	t.Parallel()
	want := "moto_server not found on PATH: it ships with the machine image's Python (pip package moto[server])"
	if got := motoserver.ErrNotFound.Error(); got != want {
		t.Errorf("ErrNotFound = %q, want %q", got, want)
	}
}
