package main

import (
	"os"
	"testing"

	"github.com/zim-deleteconv/zim-deleteconv/internal/testenv"
)

// The wiring tests build the handler against moto's Secrets Manager.
func TestMain(m *testing.M) {
	testenv.Require(testenv.MotoServer)
	os.Exit(m.Run())
}
