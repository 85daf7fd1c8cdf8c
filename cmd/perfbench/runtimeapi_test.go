package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
)

// The held invocation runs a real aws-lambda-go bootstrap (hello-world)
// through perfbench's Runtime API: init ends with its first request for an
// event, and the event's answer comes back.
func TestHeldInvokeRunsABootstrap(t *testing.T) {
	root, err := devstack.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "bootstrap")
	if err := devstack.GoBuild(t.Context(), root, helloPackage, bin); err != nil {
		t.Fatal(err)
	}
	event := []byte(`{"FromUserId":"u","ConvId":"c","ConvType":0}`)
	h, err := heldInvoke(t.Context(), bin, []string{"AWS_LAMBDA_FUNCTION_NAME=held-test"}, 0, event)
	if err != nil {
		t.Fatal(err)
	}
	if err := echoed(devstack.InvokeResult{Body: h.body}, event); err != nil {
		t.Error(err)
	}
	if h.init <= 0 || h.invoke <= 0 {
		t.Errorf("init %v, invoke %v: both must be measured", h.init, h.invoke)
	}
}

func TestHeldInvokeReportsABootstrapThatExits(t *testing.T) {
	bin, err := exec.LookPath("false")
	if err != nil {
		t.Fatal(err)
	}
	_, err = heldInvoke(context.Background(), bin, nil, 0, []byte(`{}`))
	if err == nil || !strings.Contains(err.Error(), "the bootstrap exited") {
		t.Errorf("heldInvoke(false) = %v, want an error saying the bootstrap exited", err)
	}
}
