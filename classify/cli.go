package classify

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// MaxLineBytes bounds one input line of Stream. Provider bodies are a few
// KB; a longer line is reported as an error and skipped.
const MaxLineBytes = 16 << 20

// streamInput is one line of Stream's input.
type streamInput struct {
	Provider   *string `json:"provider"`
	Surface    *string `json:"surface"`
	HTTPStatus *int    `json:"http_status"`
	Raw        *string `json:"raw"`
	Operation  string  `json:"operation"`
	// RetryAfter is the value of the response's Retry-After header.
	RetryAfter string `json:"retry_after"`
}

// streamVerdict is one line of Stream's output.
type streamVerdict struct {
	Class           string  `json:"class"`
	Reason          string  `json:"reason"`
	Scope           string  `json:"scope"`
	Action          string  `json:"action"`
	RetryAfterS     float64 `json:"retry_after_s"`
	OutageSensitive bool    `json:"outage_sensitive"`
}

// streamError is the output line for an input line that cannot be parsed.
type streamError struct {
	Error string `json:"error"`
}

// Stream classifies JSON lines from r and writes one JSON line per input
// line to w, in order.
//
// An input line is an object {"provider", "surface", "http_status", "raw",
// "operation", "retry_after"}: provider is microsoft, google or generic;
// surface is token, graph, google_token, gmail, imap or smtp; http_status is
// a number or null; raw is the body or protocol line; operation and
// retry_after (a Retry-After header value) are optional. Other fields are
// ignored, so testdata/vectors.jsonl can be fed as it is.
//
// An output line is {"class", "reason", "scope", "action", "retry_after_s",
// "outage_sensitive"}. A line that cannot be parsed gets
// {"error": "line N: …"} naming what is wrong, and the run goes on. Blank
// lines are skipped and get no output line. Lines longer than MaxLineBytes
// are reported as errors.
//
// Stream returns nil when r is exhausted. It returns an error when ctx is
// done (checked between lines) or when reading r or writing w fails. Output
// is flushed whenever Stream is about to wait for more input, so it suits
// an interactive pipe.
func Stream(ctx context.Context, r io.Reader, w io.Writer) error {
	br := bufio.NewReaderSize(r, 64<<10)
	bw := bufio.NewWriter(w)
	var line []byte
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return errors.Join(fmt.Errorf("classify stream at line %d: %w", n, err), flushOutput(bw))
		}
		if br.Buffered() == 0 {
			// About to wait for input: let the reader see what is done.
			if err := flushOutput(bw); err != nil {
				return err
			}
		}
		var tooLong bool
		var err error
		line, tooLong, err = readLine(br, line[:0])
		if err != nil && !errors.Is(err, io.EOF) {
			return errors.Join(fmt.Errorf("read input line %d: %w", n, err), flushOutput(bw))
		}
		if len(bytes.TrimSpace(line)) == 0 && !tooLong {
			if err != nil {
				return flushOutput(bw)
			}
			continue
		}
		var out any
		if tooLong {
			out = streamError{Error: fmt.Sprintf("line %d: longer than %d bytes", n, MaxLineBytes)}
		} else if in, perr := parseStreamLine(line); perr != nil {
			out = streamError{Error: fmt.Sprintf("line %d: %v", n, perr)}
		} else {
			v := Classify(in)
			out = streamVerdict{
				Class:           string(v.Class),
				Reason:          string(v.Reason),
				Scope:           string(v.Scope),
				Action:          string(v.Action),
				RetryAfterS:     v.RetryAfter.Seconds(),
				OutageSensitive: v.OutageSensitive,
			}
		}
		if werr := writeJSONLine(bw, out); werr != nil {
			return fmt.Errorf("write output for line %d: %w", n, werr)
		}
		if err != nil {
			return flushOutput(bw)
		}
	}
}

// readLine appends the next line of br, without its line ending, to buf.
// A line longer than MaxLineBytes is read to its end and dropped, and
// reported with tooLong. At the end of the input err is io.EOF.
func readLine(br *bufio.Reader, buf []byte) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(chunk) > MaxLineBytes+2 {
				tooLong = true
				buf = buf[:0]
			} else {
				buf = append(buf, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		buf = bytes.TrimSuffix(buf, []byte("\n"))
		buf = bytes.TrimSuffix(buf, []byte("\r"))
		return buf, tooLong, err
	}
}

// parseStreamLine decodes and checks one input line.
func parseStreamLine(line []byte) (Input, error) {
	var s streamInput
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&s); err != nil {
		return Input{}, fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return Input{}, errors.New("invalid JSON: data after the object")
	}
	if s.Provider == nil {
		return Input{}, errors.New(`missing "provider"`)
	}
	switch *s.Provider {
	case "microsoft", "google", "generic":
	default:
		return Input{}, fmt.Errorf(`unknown provider %q (want microsoft, google or generic)`, *s.Provider)
	}
	if s.Surface == nil {
		return Input{}, errors.New(`missing "surface"`)
	}
	switch Surface(*s.Surface) {
	case SurfaceToken, SurfaceGraph, SurfaceGoogleToken, SurfaceGmail, SurfaceIMAP, SurfaceSMTP:
	default:
		return Input{}, fmt.Errorf(`unknown surface %q (want token, graph, google_token, gmail, imap or smtp)`, *s.Surface)
	}
	if s.Raw == nil {
		return Input{}, errors.New(`missing "raw"`)
	}
	in := Input{
		Provider:  *s.Provider,
		Surface:   Surface(*s.Surface),
		Raw:       *s.Raw,
		Operation: s.Operation,
	}
	if s.HTTPStatus != nil {
		if *s.HTTPStatus < 100 || *s.HTTPStatus > 599 {
			return Input{}, fmt.Errorf(`"http_status" %d is not an HTTP status`, *s.HTTPStatus)
		}
		in.HTTPStatus = *s.HTTPStatus
	}
	if s.RetryAfter != "" {
		in.Header = http.Header{"Retry-After": {s.RetryAfter}}
	}
	return in, nil
}

// writeJSONLine writes v as one JSON line.
func writeJSONLine(w *bufio.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return err
	}
	return nil
}

func flushOutput(bw *bufio.Writer) error {
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("flush output: %w", err)
	}
	return nil
}
