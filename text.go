package holdfast

import (
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxText is the longest a text field given to holdfast may be, in bytes,
// unless the field says otherwise (a send's body may be longer).
const MaxText = 4096

// CheckText checks a text field where it enters holdfast (an API body, a
// form, a query parameter): it returns an *InvalidError naming field when
// s holds a NUL byte (which PostgreSQL cannot store), is not valid UTF-8,
// or is longer than max bytes. Every edge applies it, so nothing the
// stores cannot keep gets as far as a store.
func CheckText(field, s string, max int) error {
	switch {
	case len(s) > max:
		return Invalidf(field, "is longer than %d bytes", max)
	case !utf8.ValidString(s):
		return Invalidf(field, "is not valid UTF-8 text")
	case strings.IndexByte(s, 0) >= 0:
		return Invalidf(field, "contains a NUL character")
	}
	return nil
}

// CheckValues applies CheckText, with max, to every value of a form or a
// query string (a url.Values), naming its key; a key that is not text
// itself is named quoted. Keys are checked in order, so the answer does
// not vary.
func CheckValues(values map[string][]string, max int) error {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := CheckText(strconv.QuoteToASCII(k), k, 256); err != nil {
			return err
		}
		for _, v := range values[k] {
			if err := CheckText(k, v, max); err != nil {
				return err
			}
		}
	}
	return nil
}
