package emulatortest_test

import (
	"net/http"
	"testing"

	"github.com/holdfast/holdfast/emulator"
	"github.com/holdfast/holdfast/emulator/emulatortest"
)

func TestStart(t *testing.T) {
	t.Parallel()
	e, urls := emulatortest.Start(t)
	if _, err := e.CreateAccount(emulator.Account{Provider: emulator.Google, Email: "gus@gmail.com"}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(urls.Control + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s/health = %d; want 200", urls.Control, resp.StatusCode)
	}
}
