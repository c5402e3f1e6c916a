package classify

import (
	"strings"
	"unicode/utf8"
)

// This file holds the small allocation-free scanners the rules use to read
// provider bodies: a JSON walker that finds fields by structure (never by
// searching the raw bytes), a decoder for JSON and form-encoded string values,
// and ASCII case-folding helpers that work on strings and byte slices alike.

// encoding says how the bytes of a text value are encoded on the wire.
type encoding uint8

const (
	encPlain encoding = iota // the bytes are the value
	encJSON                  // the contents of a JSON string, between the quotes
	encForm                  // an application/x-www-form-urlencoded value
)

// text is a string value as it appears on the wire, decoded only when it is
// compared. The zero text is absent.
type text struct {
	s   string
	enc encoding
	esc bool // s holds escape sequences; when false s is the value itself
	ok  bool // the value is present
}

// textReader yields the decoded bytes of a text one at a time.
type textReader struct {
	s    string
	i    int
	enc  encoding
	pend [utf8.UTFMax]byte
	pn   int
	pi   int
}

// next returns the next decoded byte, or false at the end of the value.
// Malformed escapes are passed through as they are: the rules only compare
// values, and a malformed escape then simply does not match.
func (r *textReader) next() (byte, bool) {
	if r.pi < r.pn {
		b := r.pend[r.pi]
		r.pi++
		return b, true
	}
	if r.i >= len(r.s) {
		return 0, false
	}
	c := r.s[r.i]
	switch r.enc {
	case encJSON:
		if c == '\\' {
			return r.jsonEscape()
		}
	case encForm:
		switch c {
		case '+':
			r.i++
			return ' ', true
		case '%':
			if r.i+2 < len(r.s) {
				hi, ok1 := unhex(r.s[r.i+1])
				lo, ok2 := unhex(r.s[r.i+2])
				if ok1 && ok2 {
					r.i += 3
					return hi<<4 | lo, true
				}
			}
		}
	}
	r.i++
	return c, true
}

// jsonEscape decodes the escape sequence at r.s[r.i] (a backslash).
func (r *textReader) jsonEscape() (byte, bool) {
	if r.i+1 >= len(r.s) {
		r.i++
		return '\\', true
	}
	e := r.s[r.i+1]
	switch e {
	case '"', '\\', '/':
		r.i += 2
		return e, true
	case 'b':
		r.i += 2
		return '\b', true
	case 'f':
		r.i += 2
		return '\f', true
	case 'n':
		r.i += 2
		return '\n', true
	case 'r':
		r.i += 2
		return '\r', true
	case 't':
		r.i += 2
		return '\t', true
	case 'u':
		cp, ok := hex4(r.s, r.i+2)
		if !ok {
			break
		}
		r.i += 6
		rn := rune(cp)
		if utf16IsHighSurrogate(rn) {
			if lo, ok := hex4(r.s, r.i+2); ok && r.i+1 < len(r.s) && r.s[r.i] == '\\' && r.s[r.i+1] == 'u' && utf16IsLowSurrogate(rune(lo)) {
				r.i += 6
				rn = (rn-0xD800)<<10 + (rune(lo) - 0xDC00) + 0x10000
			} else {
				rn = utf8.RuneError
			}
		} else if utf16IsLowSurrogate(rn) {
			rn = utf8.RuneError
		}
		r.pn = utf8.EncodeRune(r.pend[:], rn)
		r.pi = 1
		return r.pend[0], true
	}
	r.i++
	return '\\', true
}

func utf16IsHighSurrogate(r rune) bool { return r >= 0xD800 && r < 0xDC00 }
func utf16IsLowSurrogate(r rune) bool  { return r >= 0xDC00 && r < 0xE000 }

// hex4 parses the four hex digits at s[i:i+4].
func hex4(s string, i int) (uint16, bool) {
	if i < 0 || i+4 > len(s) {
		return 0, false
	}
	var v uint16
	for j := i; j < i+4; j++ {
		d, ok := unhex(s[j])
		if !ok {
			return 0, false
		}
		v = v<<4 | uint16(d)
	}
	return v, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// reader returns a reader over the decoded bytes of t.
func (t text) reader() textReader { return textReader{s: t.s, enc: t.enc} }

// decode writes the decoded value into buf and returns its length, and
// whether the whole value fit.
func (t text) decode(buf []byte) (int, bool) {
	if !t.esc {
		n := copy(buf, t.s)
		return n, n == len(t.s)
	}
	r := t.reader()
	n := 0
	for {
		b, ok := r.next()
		if !ok {
			return n, true
		}
		if n == len(buf) {
			return n, false
		}
		buf[n] = b
		n++
	}
}

// decodeBufSize bounds the part of an escaped value the rules look at. The
// values they compare (codes, reasons, short documented messages) are far
// shorter; longer values are compared on their first decodeBufSize bytes.
const decodeBufSize = 512

// is reports whether t is present and equals lit exactly.
func (t text) is(lit string) bool {
	if !t.ok {
		return false
	}
	if !t.esc {
		return t.s == lit
	}
	var buf [decodeBufSize]byte
	n, full := t.decode(buf[:])
	return full && string(buf[:n]) == lit
}

// isTrimmed reports whether t, with surrounding white space removed, equals
// lit exactly.
func (t text) isTrimmed(lit string) bool {
	if !t.ok {
		return false
	}
	if !t.esc {
		return strings.TrimSpace(t.s) == lit
	}
	var buf [decodeBufSize]byte
	n, full := t.decode(buf[:])
	return full && string(trimSpace(buf[:n])) == lit
}

// byteString is the constraint of the helpers that work on both strings and
// byte slices without converting (and so without allocating).
type byteString interface{ ~string | ~[]byte }

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// equalFold reports whether s equals lit without regard to ASCII case.
func equalFold[T byteString](s T, lit string) bool {
	if len(s) != len(lit) {
		return false
	}
	for i := 0; i < len(lit); i++ {
		if lowerASCII(s[i]) != lowerASCII(lit[i]) {
			return false
		}
	}
	return true
}

// hasPrefixFold reports whether s begins with lit without regard to ASCII
// case.
func hasPrefixFold[T byteString](s T, lit string) bool {
	return len(s) >= len(lit) && equalFold(s[:len(lit)], lit)
}

// indexFold returns the first position of lit in s without regard to ASCII
// case, or -1.
func indexFold[T byteString](s T, lit string) int {
	if len(lit) == 0 {
		return 0
	}
	first := lowerASCII(lit[0])
	for i := 0; i+len(lit) <= len(s); i++ {
		if lowerASCII(s[i]) == first && equalFold(s[i:i+len(lit)], lit) {
			return i
		}
	}
	return -1
}

// indexOf returns the first position of lit in s, or -1.
func indexOf[T byteString](s T, lit string) int {
	if len(lit) == 0 {
		return 0
	}
	for i := 0; i+len(lit) <= len(s); i++ {
		if s[i] == lit[0] && string(s[i:i+len(lit)]) == lit {
			return i
		}
	}
	return -1
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// trimSpace removes ASCII white space at both ends of s.
func trimSpace[T byteString](s T) T {
	i, j := 0, len(s)
	for i < j && isSpace(s[i]) {
		i++
	}
	for j > i && isSpace(s[j-1]) {
		j--
	}
	return s[i:j]
}

// JSON structure.

// skipWS returns the position of the first non-white-space byte at or after i.
func skipWS(s string, i int) int {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i
}

// scanString scans the JSON string starting at s[i] (a quote). It returns the
// position just past the closing quote and whether the contents hold a
// backslash escape.
func scanString(s string, i int) (end int, esc bool, ok bool) {
	j := i + 1
	for {
		k := strings.IndexByte(s[j:], '"')
		if k < 0 {
			return len(s), false, false
		}
		q := j + k
		n := 0
		for p := q - 1; p > i && s[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return q + 1, strings.IndexByte(s[i+1:q], '\\') >= 0, true
		}
		j = q + 1
	}
}

// skipValue returns the position just past the JSON value starting at s[i].
// Nested objects and arrays are skipped by bracket depth, with strings
// skipped whole so that brackets and quotes inside them do not count.
func skipValue(s string, i int) (int, bool) {
	if i >= len(s) {
		return i, false
	}
	switch s[i] {
	case '"':
		end, _, ok := scanString(s, i)
		return end, ok
	case '{', '[':
		depth := 0
		for j := i; j < len(s); {
			switch s[j] {
			case '"':
				end, _, ok := scanString(s, j)
				if !ok {
					return len(s), false
				}
				j = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
			j++
		}
		return len(s), false
	}
	j := i
	for j < len(s) {
		c := s[j]
		if c == ',' || c == '}' || c == ']' || c == ':' || c == '{' || c == '[' || c == '"' || isSpace(c) {
			break
		}
		j++
	}
	return j, j > i
}

// objIter walks the members of a JSON object.
type objIter struct {
	s    string
	i    int
	done bool
}

// object returns an iterator over the object starting at s[i] (after white
// space), or false if there is no object there.
func object(s string, i int) (objIter, bool) {
	i = skipWS(s, i)
	if i >= len(s) || s[i] != '{' {
		return objIter{done: true}, false
	}
	return objIter{s: s, i: i + 1}, true
}

// next returns the next member: its key, and the bounds of its value.
func (it *objIter) next() (key text, vs, ve int, ok bool) {
	if it.done {
		return text{}, 0, 0, false
	}
	s := it.s
	i := skipWS(s, it.i)
	if i < len(s) && s[i] == ',' {
		i = skipWS(s, i+1)
	}
	if i >= len(s) || s[i] != '"' {
		it.done = true
		return text{}, 0, 0, false
	}
	end, esc, sok := scanString(s, i)
	if !sok {
		it.done = true
		return text{}, 0, 0, false
	}
	key = text{s: s[i+1 : end-1], enc: encJSON, esc: esc, ok: true}
	j := skipWS(s, end)
	if j >= len(s) || s[j] != ':' {
		it.done = true
		return text{}, 0, 0, false
	}
	j = skipWS(s, j+1)
	ve, vok := skipValue(s, j)
	if !vok {
		it.done = true
		return text{}, 0, 0, false
	}
	it.i = ve
	return key, j, ve, true
}

// arrIter walks the elements of a JSON array.
type arrIter struct {
	s    string
	i    int
	done bool
}

// array returns an iterator over the array starting at s[i], or false if the
// value there is not an array.
func array(s string, i int) (arrIter, bool) {
	if i >= len(s) || s[i] != '[' {
		return arrIter{done: true}, false
	}
	return arrIter{s: s, i: i + 1}, true
}

// next returns the bounds of the next element.
func (it *arrIter) next() (vs, ve int, ok bool) {
	if it.done {
		return 0, 0, false
	}
	s := it.s
	i := skipWS(s, it.i)
	if i < len(s) && s[i] == ',' {
		i = skipWS(s, i+1)
	}
	if i >= len(s) || s[i] == ']' {
		it.done = true
		return 0, 0, false
	}
	ve, vok := skipValue(s, i)
	if !vok {
		it.done = true
		return 0, 0, false
	}
	it.i = ve
	return i, ve, true
}

// jsonText returns the JSON string value s[vs:ve], or an absent text if the
// value is not a string.
func jsonText(s string, vs, ve int) text {
	if ve-vs < 2 || s[vs] != '"' {
		return text{}
	}
	inner := s[vs+1 : ve-1]
	return text{s: inner, enc: encJSON, esc: strings.IndexByte(inner, '\\') >= 0, ok: true}
}

// jsonInt returns the JSON integer s[vs:ve]. Fractions, exponents and values
// that do not fit in 32 bits are rejected.
func jsonInt(s string, vs, ve int) (int, bool) {
	v := s[vs:ve]
	neg := false
	if len(v) > 0 && v[0] == '-' {
		neg = true
		v = v[1:]
	}
	if len(v) == 0 || len(v) > 10 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if n > 1<<31-1 {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// Form-encoded bodies.

// formIter walks the fields of an application/x-www-form-urlencoded body
// (as on the query string of an OAuth error redirect).
type formIter struct {
	s string
	i int
}

// next returns the next key and value.
func (it *formIter) next() (key, val text, ok bool) {
	for it.i < len(it.s) {
		rest := it.s[it.i:]
		field := rest
		if k := strings.IndexByte(rest, '&'); k >= 0 {
			field = rest[:k]
			it.i += k + 1
		} else {
			it.i = len(it.s)
		}
		if field == "" {
			continue
		}
		k, v := field, ""
		if eq := strings.IndexByte(field, '='); eq >= 0 {
			k, v = field[:eq], field[eq+1:]
		}
		return formText(k), formText(v), true
	}
	return text{}, text{}, false
}

func formText(s string) text {
	return text{s: s, enc: encForm, esc: strings.ContainsAny(s, "%+"), ok: true}
}
