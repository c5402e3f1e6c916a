package sim

import (
	"context"
	"fmt"
	"os"
	"testing"
)

func TestDbg(t *testing.T) {
	f := os.Getenv("SIM_DBG")
	if f == "" {
		return
	}
	sc, _ := LoadScenario(f)
	rep, r, _ := Run(context.Background(), sc, "holdfast", nil)
	summary(os.Stdout, rep)
	n := 0
	for i := range r.in {
		for m := r.in[i].mHead; m >= 0; m = r.mNext[m] {
			if r.mAt[m] < r.in[i].invalidAt && int64(r.mAt[m]) <= r.dur-inFlight {
				if n < 15 {
					fmt.Printf("inbox %d state %s mail at %d inbox %+v lastreq %v\n", i, r.eng.State(int32(i)), r.mAt[m], r.in[i], r.eng.KeepAliveUnix(int32(i))-baseUnix)
				}
				n++
				break
			}
		}
	}
	for _, in := range r.eng.Incidents() {
		fmt.Println(in.ID, in.Kind, in.Timeline)
	}
}
