package classify_test

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/holdfast/holdfast/classify"
)

func ExampleClassify() {
	v := classify.Classify(classify.Input{
		Provider:   "microsoft",
		Surface:    classify.SurfaceToken,
		HTTPStatus: 400,
		Raw:        `{"error":"invalid_grant","error_description":"AADSTS700082: The refresh token has expired due to inactivity.","error_codes":[700082]}`,
	})
	fmt.Println(v.Class, v.Reason, v.Scope, v.Action)
	fmt.Println(v.UserMessage)
	// Output:
	// permanent token_expired account reconnect
	// Access to this inbox expired; please reconnect it.
}

func ExampleStream() {
	in := strings.NewReader(`{"provider":"google","surface":"imap","raw":"A5 NO [OVERQUOTA] Account exceeded command or bandwidth limits."}
{"provider":"generic","surface":"smtp","raw":"535 5.7.8  Authentication credentials invalid"}
`)
	if err := classify.Stream(context.Background(), in, os.Stdout); err != nil {
		fmt.Println(err)
	}
	// Output:
	// {"class":"recoverable","reason":"quota_exceeded","scope":"account","action":"retry","retry_after_s":0,"outage_sensitive":false}
	// {"class":"permanent","reason":"password_changed","scope":"account","action":"reconnect","retry_after_s":0,"outage_sensitive":true}
}
