package motoserver

import (
	"os"
	"slices"
	"testing"
)

func TestChildEnvDropsTheCallersAWSSettings(t *testing.T) {
	t.Parallel()
	got := childEnv([]string{"PATH=/usr/bin", "AWS_PROFILE=work", "AWS_REGION=eu-west-1", "HOME=/root", "MY_AWS_THING=1"})
	want := []string{"PATH=/usr/bin", "HOME=/root", "MY_AWS_THING=1", "AWS_CONFIG_FILE=" + os.DevNull, "AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull}
	if !slices.Equal(got, want) {
		t.Fatalf("childEnv = %v, want %v", got, want)
	}
}
