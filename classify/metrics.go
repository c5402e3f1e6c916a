package classify

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// UnknownTotal counts the errors whose shape the classifier does not know, by
// provider and surface. A rise means a provider changed its error format or
// began returning a new code: add a rule for it. Label values are limited to
// the known providers and surfaces, plus "other", so that input cannot grow
// the series.
//
// The package never registers it on a registry by itself; call Register.
var UnknownTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "holdfast_classify_unknown_total",
	Help: "Provider errors whose shape the classifier does not know, classified recoverable/unknown.",
}, []string{"provider", "surface"})

// Register registers the package's collectors (UnknownTotal) with reg.
func Register(reg prometheus.Registerer) error {
	if err := reg.Register(UnknownTotal); err != nil {
		return fmt.Errorf("register holdfast_classify_unknown_total: %w", err)
	}
	return nil
}

var (
	providerLabels = [...]string{"microsoft", "google", "generic", "other"}
	surfaceLabels  = [...]Surface{SurfaceToken, SurfaceGraph, SurfaceGoogleToken, SurfaceGmail, SurfaceIMAP, SurfaceSMTP, "other"}
	// unknownCounters holds the children of UnknownTotal, resolved once so
	// that counting does not allocate and every series starts at zero.
	unknownCounters [len(providerLabels)][len(surfaceLabels)]prometheus.Counter
)

func init() {
	for p, pl := range providerLabels {
		for s, sl := range surfaceLabels {
			unknownCounters[p][s] = UnknownTotal.WithLabelValues(pl, string(sl))
		}
	}
}

// countUnknown adds one to UnknownTotal for the provider and surface.
func countUnknown(provider string, surface Surface) {
	p := len(providerLabels) - 1
	for i, pl := range providerLabels[:p] {
		if provider == pl {
			p = i
			break
		}
	}
	s := len(surfaceLabels) - 1
	for i, sl := range surfaceLabels[:s] {
		if surface == sl {
			s = i
			break
		}
	}
	unknownCounters[p][s].Inc()
}
