package emulator_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/emulator"
	"github.com/holdfast/holdfast/emulator/emulatortest"
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

// BenchmarkSyncThroughput measures the emulator's answers per second to
// incremental Graph delta calls from parallel clients over HTTP, 1,000
// mailboxes with a few messages each: the ceiling a load test can drive.
//
//	go test ./emulator -run '^$' -bench SyncThroughput -cpu 2
func BenchmarkSyncThroughput(b *testing.B) {
	const n = 1000
	e, u := emulatortest.StartConfig(b, emulator.Config{MaxAccounts: n, KeepMessages: 5})
	accs, err := e.CreateAccounts(emulator.Bulk{Provider: emulator.Microsoft, Prefix: "s", DomainCount: 10, Count: n})
	if err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	post := func(u string, form url.Values) map[string]any {
		resp, err := client.PostForm(u, form)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&v)
		return v
	}
	tokens := make([]string, n)
	for i, a := range accs {
		v := post(u.MicrosoftLogin+"/common/oauth2/v2.0/token", url.Values{"grant_type": {"refresh_token"},
			"refresh_token": {a.RefreshToken}, "client_id": {emulator.DefaultClientID}, "client_secret": {emulator.DefaultClientSecret}})
		tokens[i] = v["access_token"].(string)
		for j := range 3 {
			_, _ = e.Deliver(emulator.Mail{To: a.Email, From: "x@example.net", Subject: fmt.Sprint(j), Text: "hi"})
		}
	}
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1)) % n
			req, _ := http.NewRequest(http.MethodGet, u.Graph+"/v1.0/me/mailFolders/inbox/messages/delta", nil)
			req.Header.Set("Authorization", "Bearer "+tokens[i])
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("delta: %d", resp.StatusCode)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
