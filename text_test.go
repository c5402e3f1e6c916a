package holdfast_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/holdfast/holdfast"
)

func TestCheckText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, s string
		want    string // substring of the error; empty: accepted
	}{
		{"Plain", "wörld ✓", ""},
		{"Empty", "", ""},
		{"NUL", "a\x00b", "NUL"},
		{"InvalidUTF8", "a\xffb", "UTF-8"},
		{"TruncatedRune", "\xe2\x9c", "UTF-8"},
		{"Surrogate", "\xed\xa0\x80", "UTF-8"},
		{"AtTheLimit", strings.Repeat("x", 10), ""},
		{"OverTheLimit", strings.Repeat("x", 11), "longer than 10 bytes"},
	}
	for _, tt := range tests {
		err := holdfast.CheckText("note", tt.s, 10)
		var inv *holdfast.InvalidError
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: CheckText = %v; want nil", tt.name, err)
		case tt.want != "" && (!errors.As(err, &inv) || inv.Field != "note" || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: CheckText = %v; want an InvalidError for note saying %q", tt.name, err, tt.want)
		}
	}
}

func TestCheckValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		values map[string][]string
		field  string // empty: accepted
	}{
		{"Fine", map[string][]string{"a": {"1", "2"}, "b": {"x"}}, ""},
		{"SecondValue", map[string][]string{"a": {"1", "2\x00"}}, "a"},
		{"FirstKeyInOrder", map[string][]string{"z": {"\xff"}, "b": {"\x00"}}, "b"},
		{"BadKey", map[string][]string{"k\x00": {"v"}}, `"k\x00"`},
	}
	for _, tt := range tests {
		err := holdfast.CheckValues(tt.values, 100)
		var inv *holdfast.InvalidError
		if tt.field == "" && err != nil || tt.field != "" && (!errors.As(err, &inv) || inv.Field != tt.field) {
			t.Errorf("%s: CheckValues = %v; want field %q", tt.name, err, tt.field)
		}
	}
}
