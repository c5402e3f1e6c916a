package emulator_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/holdfast/holdfast/emulator"
)

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkAccountFootprint creates 100,000 accounts, with no messages and
// with three delivered messages each, and reports the live heap per
// account (heap-B/account) besides the time to create them.
//
//	go test ./emulator -run '^$' -bench AccountFootprint -benchtime 1x
func BenchmarkAccountFootprint(b *testing.B) {
	const n = 100_000
	for _, msgs := range []int{0, 3} {
		b.Run(fmt.Sprintf("messages=%d", msgs), func(b *testing.B) {
			for b.Loop() {
				before := heapInUse()
				e := emulator.New(emulator.Config{MaxAccounts: n})
				for i := range n {
					email := fmt.Sprintf("lt%d@t%d.example", i, i%100)
					if _, err := e.CreateAccount(emulator.Account{Provider: emulator.Microsoft, Email: email}); err != nil {
						b.Fatal(err)
					}
					for j := range msgs {
						if _, err := e.Deliver(emulator.Mail{To: email, From: "sender@example.com", Subject: fmt.Sprintf("m%d", j), Text: "hello"}); err != nil {
							b.Fatal(err)
						}
					}
				}
				after := heapInUse()
				b.ReportMetric(float64(after-before)/n, "heap-B/account")
				runtime.KeepAlive(e)
			}
		})
	}
}

// BenchmarkBulkFootprint creates 100,000 accounts with CreateAccounts and
// reports the live heap per account once the answer is dropped.
//
//	go test ./emulator -run '^$' -bench BulkFootprint -benchtime 1x
func BenchmarkBulkFootprint(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		before := heapInUse()
		e := emulator.New(emulator.Config{MaxAccounts: n})
		accs, err := e.CreateAccounts(emulator.Bulk{Provider: emulator.Google, Prefix: "lt", DomainCount: 100, Count: n})
		if err != nil || len(accs) != n {
			b.Fatal(err, len(accs))
		}
		accs = nil
		after := heapInUse()
		b.ReportMetric(float64(after-before)/n, "heap-B/account")
		runtime.KeepAlive(e)
	}
}
