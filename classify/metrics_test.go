package classify_test

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/holdfast/holdfast/classify"
)

// unknownCount reads holdfast_classify_unknown_total for one label pair
// from reg.
func unknownCount(t *testing.T, reg *prometheus.Registry, provider, surface string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather() = %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "holdfast_classify_unknown_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["provider"] == provider && labels["surface"] == surface {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no holdfast_classify_unknown_total{provider=%q,surface=%q}", provider, surface)
	return 0
}

func TestUnknownTotal(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	if err := classify.Register(reg); err != nil {
		t.Fatalf("Register() = %v, want nil", err)
	}
	// Label pairs no other test uses, so parallel tests do not interfere.
	before := unknownCount(t, reg, "generic", "gmail")
	classify.Classify(classify.Input{Provider: "generic", Surface: classify.SurfaceGmail, HTTPStatus: 418, Raw: "teapot"})
	classify.Classify(classify.Input{Provider: "generic", Surface: classify.SurfaceGmail, HTTPStatus: 503, Raw: "teapot"})
	if got := unknownCount(t, reg, "generic", "gmail") - before; got != 1 {
		t.Errorf("holdfast_classify_unknown_total{generic,gmail} rose by %v, want 1 (the 503 is known by its status)", got)
	}
	before = unknownCount(t, reg, "google", "other")
	classify.Classify(classify.Input{Provider: "google", Surface: "pop3", Raw: "-ERR"})
	if got := unknownCount(t, reg, "google", "other") - before; got != 1 {
		t.Errorf("holdfast_classify_unknown_total{google,other} rose by %v, want 1", got)
	}

	err := classify.Register(reg)
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) {
		t.Errorf("second Register() = %v, want an AlreadyRegisteredError", err)
	}
}
