package classify_test

import (
	"testing"

	"github.com/holdfast/holdfast/classify"
)

// BenchmarkClassify classifies the vector mix, one vector per iteration.
func BenchmarkClassify(b *testing.B) {
	vs := loadVectors(b)
	ins := make([]classify.Input, len(vs))
	for i, v := range vs {
		ins[i] = v.input()
	}
	b.ReportAllocs()
	b.ResetTimer()
	var sink classify.Verdict
	for i := 0; b.Loop(); i++ {
		sink = classify.Classify(ins[i%len(ins)])
	}
	_ = sink
}
