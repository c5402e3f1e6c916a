package syncer_test

import (
	"context"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/syncer"
)

// nopStore stores nothing; the memory benchmark never starts the syncer.
type nopStore struct {
	// The aggregates' other methods are not called: they would panic.
	holdfast.InboxStore
	holdfast.MailStore
}

func (nopStore) Inbox(context.Context, string) (*holdfast.Inbox, error) {
	return nil, holdfast.ErrNotFound
}

func (nopStore) Inboxes(context.Context, holdfast.InboxFilter) ([]*holdfast.Inbox, error) {
	return nil, nil
}

func (nopStore) SaveSync(context.Context, string, []holdfast.Message, string, time.Time, holdfast.Announce[[]holdfast.Message]) (int, error) {
	return 0, holdfast.ErrNotFound
}

// BenchmarkScheduleMemory reports the memory the schedule holds per inbox:
// its heap entry, its slot, its ID and its entry in the index map.
func BenchmarkScheduleMemory(b *testing.B) {
	const n = 1_000_000
	ids := make([]string, n)
	now := time.Now()
	for i := range ids {
		ids[i] = holdfast.NewID("inb", now)
	}
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		s, err := syncer.New(syncer.Config{
			Store: nopStore{}, Monitor: &fakeMonitor{},
			Connectors: map[holdfast.Provider]holdfast.Connector{holdfast.ProviderIMAP: newFakeConnector()},
			Session: func(context.Context, *holdfast.Inbox) (*holdfast.Session, error) {
				return nil, nil
			},
			Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			b.Fatal(err)
		}
		for _, id := range ids {
			// A copy of the ID, as one read from the store would be.
			s.Add(&holdfast.Inbox{ID: string([]byte(id)), Provider: holdfast.ProviderIMAP})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if s.Len() != n {
			b.Fatalf("Len() = %d, want %d", s.Len(), n)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/inbox")
		runtime.KeepAlive(s)
	}
}
