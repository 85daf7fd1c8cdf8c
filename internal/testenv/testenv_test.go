package testenv

import (
	"strings"
	"testing"
)

func TestMissingNamesEachAbsentToolOnce(t *testing.T) {
	t.Parallel()
	here := Tool{Name: "here", Pip: "here-pkg", present: func() bool { return true }}
	gone := Tool{Name: "gone", Pip: "gone-pkg", present: func() bool { return false }}
	alsoGone := Tool{Name: "also-gone", Pip: `"also[server]"`, present: func() bool { return false }}

	if got := Missing(here); got != "" {
		t.Errorf("Missing(present tool) = %q, want \"\"", got)
	}
	got := Missing(here, gone, alsoGone)
	want := `missing gone, also-gone: the tests need the README's Python tools (Requirements); install with: pip install gone-pkg "also[server]"`
	if got != want {
		t.Errorf("Missing = %q\nwant      %q", got, want)
	}
	if strings.Contains(got, "\n") {
		t.Errorf("Missing spans several lines: %q", got)
	}
}

func TestPresenceChecks(t *testing.T) {
	t.Parallel()
	if onPath("no-such-tool-zim-deleteconv")() {
		t.Error("onPath found a tool that does not exist")
	}
	if !onPath("go")() {
		t.Error("onPath did not find go, which runs this test")
	}
	if pythonImports("no_such_module_zim_deleteconv")() {
		t.Error("pythonImports accepted a module that does not exist")
	}
}
