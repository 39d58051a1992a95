package mux

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

// countingWriter records the number of Write calls.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.Buffer.Write(p)
}

func TestRequestRoundTrip(t *testing.T) {
	for _, route := range []string{"a", "pg", "pg.gw.example.com", "redis-6379", "svc_a:5432", strings.Repeat("x", MaxRouteLen)} {
		var w countingWriter
		if err := WriteRequest(&w, Request{Route: route}); err != nil {
			t.Fatalf("WriteRequest(%q): %v", route, err)
		}
		if w.writes != 1 {
			t.Errorf("WriteRequest(%q) made %d Write calls, want 1", route, w.writes)
		}
		want := append([]byte{Version, byte(len(route))}, route...)
		if !bytes.Equal(w.Bytes(), want) {
			t.Errorf("WriteRequest(%q) wrote %x, want %x", route, w.Bytes(), want)
		}
		// Trailing bytes (the stream payload) must stay unread; a one-byte
		// reader catches any read-ahead.
		w.WriteString("payload")
		r := bytes.NewReader(w.Bytes())
		got, err := ReadRequest(iotest.OneByteReader(r))
		if err != nil || got.Route != route {
			t.Fatalf("ReadRequest = %+v, %v; want route %q", got, err, route)
		}
		if rest, _ := io.ReadAll(r); string(rest) != "payload" {
			t.Errorf("after ReadRequest the reader holds %q, want %q", rest, "payload")
		}
	}
}

func TestReadRequestMalformed(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		is      error
		message string
	}{
		{"empty", nil, io.EOF, "reading stream request: EOF"},
		{"version only", []byte{1}, ErrTruncated, "got 1 of 2 bytes"},
		{"bad version", []byte{2, 2, 'p', 'g'}, ErrVersion, "version byte is 2, want 1"},
		{"version zero", []byte{0, 2, 'p', 'g'}, ErrVersion, "version byte is 0"},
		{"length zero", []byte{1, 0}, ErrRoute, "route length is 0"},
		{"length beyond bytes", []byte{1, 5, 'p', 'g'}, ErrTruncated, "got 2 of 5 bytes"},
		{"length with no bytes", []byte{1, 255}, io.ErrUnexpectedEOF, "got 0 of 255 bytes"},
		{"space", []byte{1, 3, 'p', ' ', 'g'}, ErrRoute, `byte 1 of route "p g" is ' '`},
		{"control", []byte{1, 3, 'p', '\n', 'g'}, ErrRoute, `is '\n'`},
		{"slash", []byte{1, 3, 'a', '/', 'b'}, ErrRoute, `is '/'`},
		{"non-ascii", []byte{1, 2, 0xc3, 0xa9}, ErrRoute, `byte 0 of route`},
		{"nul", []byte{1, 1, 0}, ErrRoute, `is '\x00'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadRequest(bytes.NewReader(tt.in))
			if err == nil {
				t.Fatalf("ReadRequest(%x) = %+v, want an error", tt.in, got)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("ReadRequest(%x) error %q does not wrap %q", tt.in, err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("ReadRequest(%x) error %q does not mention %q", tt.in, err, tt.message)
			}
		})
	}
}

func TestReadRequestReaderError(t *testing.T) {
	boom := errors.New("boom")
	_, err := ReadRequest(io.MultiReader(bytes.NewReader([]byte{1, 4, 'a'}), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want it to wrap the reader's error", err)
	}
}

func TestWriteRequestInvalid(t *testing.T) {
	for _, route := range []string{"", "a b", strings.Repeat("y", MaxRouteLen+1), "é", "a\x00"} {
		var w countingWriter
		err := WriteRequest(&w, Request{Route: route})
		if !errors.Is(err, ErrRoute) {
			t.Errorf("WriteRequest(%q) = %v, want ErrRoute", route, err)
		}
		if w.writes != 0 {
			t.Errorf("WriteRequest(%q) wrote %d times despite the error", route, w.writes)
		}
	}
}

func TestValidRouteMessage(t *testing.T) {
	err := ValidRoute(strings.Repeat("z", 300))
	if err == nil || !strings.Contains(err.Error(), "300 bytes long") || !strings.Contains(err.Error(), "[A-Za-z0-9._:-]") {
		t.Fatalf("ValidRoute(300 bytes) = %v; want the length and the accepted form", err)
	}
	if err := ValidRoute("Az09._:-"); err != nil {
		t.Fatalf("ValidRoute of every accepted class: %v", err)
	}
}

func TestResponseRoundTrip(t *testing.T) {
	tests := []struct {
		in   Response
		wire []byte
		want Response
	}{
		{Response{Status: StatusOK}, []byte{0}, Response{Status: StatusOK}},
		{Response{Status: StatusOK, Reason: "ignored"}, []byte{0}, Response{Status: StatusOK}},
		{Response{Status: StatusForbidden, Reason: "no"}, []byte{2, 0, 2, 'n', 'o'}, Response{Status: StatusForbidden, Reason: "no"}},
		{Response{Status: StatusUnknownRoute}, []byte{1, 0, 0}, Response{Status: StatusUnknownRoute}},
		{Response{Status: 42, Reason: "x"}, []byte{42, 0, 1, 'x'}, Response{Status: 42, Reason: "x"}},
		{Response{Status: StatusBadRequest, Reason: "a\nb\x00"}, []byte{5, 0, 4, 'a', ' ', 'b', ' '}, Response{Status: StatusBadRequest, Reason: "a b "}},
		{Response{Status: StatusUnreachable, Reason: "\xffé"}, []byte{3, 0, 5, 0xef, 0xbf, 0xbd, 0xc3, 0xa9}, Response{Status: StatusUnreachable, Reason: "\uFFFDé"}},
	}
	for _, tt := range tests {
		var w countingWriter
		if err := WriteResponse(&w, tt.in); err != nil {
			t.Fatal(err)
		}
		if w.writes != 1 || !bytes.Equal(w.Bytes(), tt.wire) {
			t.Errorf("WriteResponse(%+v) wrote %x in %d calls, want %x in 1", tt.in, w.Bytes(), w.writes, tt.wire)
		}
		w.WriteString("tail")
		r := bytes.NewReader(w.Bytes())
		got, err := ReadResponse(iotest.OneByteReader(r))
		if err != nil || got != tt.want {
			t.Errorf("ReadResponse(%x) = %+v, %v; want %+v", tt.wire, got, err, tt.want)
		}
		if rest, _ := io.ReadAll(r); string(rest) != "tail" {
			t.Errorf("ReadResponse read into the payload: left %q", rest)
		}
	}
}

func TestResponseLongReason(t *testing.T) {
	// 'é' is 2 bytes: an odd limit would split one.
	long := "x" + strings.Repeat("é", MaxReasonLen)
	var buf bytes.Buffer
	if err := WriteResponse(&buf, Response{Status: StatusForbidden, Reason: long}); err != nil {
		t.Fatal(err)
	}
	got, err := ReadResponse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Reason) > MaxReasonLen || len(got.Reason) < MaxReasonLen-1 || !utf8.ValidString(got.Reason) || !strings.HasPrefix(long, got.Reason) {
		t.Fatalf("truncated reason has %d bytes (valid UTF-8 %v), want a prefix of at most %d", len(got.Reason), utf8.ValidString(got.Reason), MaxReasonLen)
	}
}

func TestReadResponseMalformed(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		is      error
		message string
	}{
		{"empty", nil, io.EOF, "EOF"},
		{"no length", []byte{2}, ErrTruncated, "got 0 of 2 bytes"},
		{"half length", []byte{2, 0}, ErrTruncated, "got 1 of 2 bytes"},
		{"too long", []byte{2, 0x04, 0x01}, ErrReason, "reason length is 1025; want at most 1024"},
		{"short reason", []byte{2, 0, 5, 'a'}, ErrTruncated, "got 1 of 5 bytes"},
		{"invalid utf8", []byte{2, 0, 1, 0xff}, ErrReason, "not UTF-8 text"},
		{"control", []byte{2, 0, 2, 'a', 0x1b}, ErrReason, "control characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadResponse(bytes.NewReader(tt.in))
			if err == nil {
				t.Fatalf("ReadResponse(%x) = %+v, want an error", tt.in, got)
			}
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.message) {
				t.Errorf("ReadResponse(%x) error %q; want it to wrap %q and mention %q", tt.in, err, tt.is, tt.message)
			}
		})
	}
}

func TestStatusString(t *testing.T) {
	want := map[Status]string{
		StatusOK: "ok", StatusUnknownRoute: "unknown route", StatusForbidden: "forbidden",
		StatusUnreachable: "backend unreachable", StatusOverloaded: "overloaded",
		StatusBadRequest: "bad request", StatusShuttingDown: "shutting down", 7: "status 7", 255: "status 255",
	}
	for s, w := range want {
		if got := s.String(); got != w {
			t.Errorf("Status(%d).String() = %q, want %q", byte(s), got, w)
		}
	}
}

func TestRefusedError(t *testing.T) {
	err := error(&RefusedError{Route: "pg", Status: StatusForbidden, Reason: "identity cn:bob not allowed"})
	if got, want := err.Error(), `gateway refused route "pg": forbidden: identity cn:bob not allowed`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got, want := (&RefusedError{Route: "x", Status: StatusOverloaded}).Error(), `gateway refused route "x": overloaded`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestSanitizeReason(t *testing.T) {
	for in, want := range map[string]string{
		"plain":       "plain",
		"tab\there":   "tab here",
		"\x1b[31mred": " [31mred",
		"bad\xfe":     "bad\uFFFD",
		"":            "",
	} {
		if got := SanitizeReason(in); got != want {
			t.Errorf("SanitizeReason(%q) = %q, want %q", in, got, want)
		}
	}
}
