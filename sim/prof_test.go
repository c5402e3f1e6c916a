package sim

import (
	"context"
	"os"
	"testing"
)

func TestProf(t *testing.T) {
	f := os.Getenv("SIM_PROF")
	if f == "" {
		return
	}
	sc, err := LoadScenario(f)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), sc, "holdfast", nil)
	if err != nil {
		t.Fatal(err)
	}
	summary(os.Stdout, rep)
}
