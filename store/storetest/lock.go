package storetest

import (
	"errors"
	"testing"

	"github.com/holdfast/holdfast"
)

// lockTests are the tests of the named locks.
var lockTests = []conformanceTest{
	{"TryLock", testTryLock},
}

func testTryLock(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	release, ok, err := s.TryLock(ctx, "relay")
	if err != nil || !ok || release == nil {
		t.Fatalf("TryLock(relay) = %v, %v; want taken", ok, err)
	}
	if r, ok, err := s.TryLock(ctx, "relay"); err != nil || ok || r != nil {
		t.Errorf("TryLock(relay) while held = %v, %v; want not taken, no release", ok, err)
	}
	other, ok, err := s.TryLock(ctx, "notify owner@example.test")
	if err != nil || !ok {
		t.Fatalf("TryLock(another name) = %v, %v; want taken", ok, err)
	}
	release()
	release() // a second call does nothing
	again, ok, err := s.TryLock(ctx, "relay")
	if err != nil || !ok {
		t.Fatalf("TryLock(relay) after release = %v, %v; want taken", ok, err)
	}
	again()
	other()
	if _, _, err := s.TryLock(ctx, ""); !errors.As(err, new(*holdfast.InvalidError)) {
		t.Errorf("TryLock(\"\") = %v; want an InvalidError", err)
	}
}
