package classify

import (
	"net/http"
	"strings"
	"time"
)

// MaxRetryAfter caps the wait a provider can ask for, so that a garbled
// Retry-After cannot park an inbox for years or overflow a Duration.
const MaxRetryAfter = 7 * 24 * time.Hour

// now returns the time Retry-After dates are measured from.
func now(in Input) time.Time {
	if in.Now.IsZero() {
		return time.Now()
	}
	return in.Now
}

// headerRetryAfter returns the wait asked for by the Retry-After header
// (RFC 9110 §10.2.3), or zero.
func headerRetryAfter(in Input) time.Duration {
	if in.Header == nil {
		return 0
	}
	return parseRetryAfter(in.Header.Get("Retry-After"), in)
}

// parseRetryAfter parses a Retry-After value: delay-seconds, which Graph
// also sends with a fraction ("2.128", provider-apis.md §2), or an
// HTTP-date. Past dates and malformed values give zero.
func parseRetryAfter(v string, in Input) time.Duration {
	v = trimSpace(v)
	if v == "" {
		return 0
	}
	if c := v[0]; c >= '0' && c <= '9' {
		return parseSeconds(v)
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	return until(t, in)
}

// parseSeconds parses a non-negative decimal number of seconds.
func parseSeconds(v string) time.Duration {
	const maxSeconds = int64(MaxRetryAfter / time.Second)
	var secs int64
	i := 0
	for ; i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
		if secs <= maxSeconds {
			secs = secs*10 + int64(v[i]-'0')
		}
	}
	var frac time.Duration
	if i < len(v) && v[i] == '.' {
		i++
		scale := time.Second / 10
		for ; i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
			frac += time.Duration(v[i]-'0') * scale
			scale /= 10
		}
	}
	if i != len(v) {
		return 0
	}
	if secs > maxSeconds {
		return MaxRetryAfter
	}
	return min(time.Duration(secs)*time.Second+frac, MaxRetryAfter)
}

// until returns the capped wait until t, or zero if t has passed.
func until(t time.Time, in Input) time.Duration {
	d := t.Sub(now(in))
	if d <= 0 {
		return 0
	}
	return min(d, MaxRetryAfter)
}

// textRetryAfter finds Gmail's "Retry after <RFC 3339 timestamp>" in an
// error message (classification.md §6, the mail-sending limit) and returns
// the wait until then. found is true when the phrase holds a timestamp, even
// one already past.
func textRetryAfter(msg text, in Input) (d time.Duration, found bool) {
	const phrase = "retry after "
	if !msg.ok {
		return 0, false
	}
	if !msg.esc {
		return retryAfterIn(msg.s, phrase, in)
	}
	var buf [decodeBufSize]byte
	n, _ := msg.decode(buf[:])
	i := indexFold(buf[:n], phrase)
	if i < 0 {
		return 0, false
	}
	return retryAfterIn(string(buf[i:n]), phrase, in)
}

func retryAfterIn(s, phrase string, in Input) (time.Duration, bool) {
	i := indexFold(s, phrase)
	if i < 0 {
		return 0, false
	}
	s = s[i+len(phrase):]
	end := 0
	for end < len(s) && !isSpace(s[end]) && s[end] != '"' && s[end] != ',' && s[end] != ';' {
		end++
	}
	ts := s[:end]
	ts = strings.TrimRight(ts, ".") // the sentence's full stop
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return 0, false
	}
	return until(t, in), true
}
