package mux

import (
	"bytes"
	"testing"
)

// FuzzReadRequest: ReadRequest never panics, never reads past the request,
// and what it accepts encodes back to the same bytes.
func FuzzReadRequest(f *testing.F) {
	for _, seed := range [][]byte{
		{1, 2, 'p', 'g'}, {1, 0}, {2, 1, 'a'}, {1, 5, 'a'}, {1, 1, ' '}, {},
		append([]byte{1, 17}, "pg.gw.example.com"...),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		req, err := ReadRequest(r)
		if err != nil {
			return
		}
		used := len(in) - r.Len()
		var out bytes.Buffer
		if err := WriteRequest(&out, req); err != nil {
			t.Fatalf("accepted request %+v does not encode: %v", req, err)
		}
		if !bytes.Equal(out.Bytes(), in[:used]) {
			t.Fatalf("re-encoded %x, read %x", out.Bytes(), in[:used])
		}
	})
}

// FuzzReadResponse: ReadResponse never panics, never reads past the
// response, and what it accepts encodes back to the same bytes.
func FuzzReadResponse(f *testing.F) {
	for _, seed := range [][]byte{
		{0}, {2, 0, 2, 'n', 'o'}, {1, 0, 0}, {5, 0x04, 0x01}, {2, 0, 1, 0xff}, {},
		{3, 0, 3, 0xe2, 0x82, 0xac},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		resp, err := ReadResponse(r)
		if err != nil {
			return
		}
		if len(resp.Reason) > MaxReasonLen {
			t.Fatalf("accepted a reason of %d bytes", len(resp.Reason))
		}
		used := len(in) - r.Len()
		var out bytes.Buffer
		if err := WriteResponse(&out, resp); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), in[:used]) {
			t.Fatalf("re-encoded %x, read %x", out.Bytes(), in[:used])
		}
	})
}
