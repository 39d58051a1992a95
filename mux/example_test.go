package mux_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/portcullis-gw/portcullis/mux"
	"github.com/rs/zerolog"
)

func ExampleWriteRequest() {
	var wire bytes.Buffer
	_ = mux.WriteRequest(&wire, mux.Request{Route: "pg"})
	_ = mux.WriteResponse(&wire, mux.Response{Status: mux.StatusForbidden, Reason: "not you"})
	fmt.Printf("% x\n", wire.Bytes())

	req, _ := mux.ReadRequest(&wire)
	resp, _ := mux.ReadResponse(&wire)
	fmt.Println(req.Route, resp.Status, resp.Reason)
	fmt.Println(&mux.RefusedError{Route: req.Route, Status: resp.Status, Reason: resp.Reason})
	// Output:
	// 01 02 70 67 02 00 07 6e 6f 74 20 79 6f 75
	// pg forbidden not you
	// gateway refused route "pg": forbidden: not you
}

// The tunnel side: one Client, one stream per local connection.
func ExampleClient() {
	tlsConf := &tls.Config{NextProtos: []string{mux.ALPN} /* certificates, CA ... */}
	client := mux.NewClient(mux.ClientConfig{
		Dial: func(ctx context.Context) (net.Conn, error) {
			d := tls.Dialer{Config: tlsConf}
			c, err := d.DialContext(ctx, "tcp", "gateway.example.com:8443")
			if err != nil {
				return nil, err
			}
			if p := c.(*tls.Conn).ConnectionState().NegotiatedProtocol; p != mux.ALPN {
				c.Close()
				return nil, fmt.Errorf("gateway speaks %q, want %q", p, mux.ALPN)
			}
			return c, nil
		},
		Logger: zerolog.Nop(),
	})
	defer client.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:5432")
	if err != nil {
		return
	}
	defer ln.Close()
	for {
		local, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			st, err := client.Open(ctx, "pg")
			cancel()
			var refused *mux.RefusedError
			if errors.As(err, &refused) {
				fmt.Println(refused) // gateway refused route "pg": forbidden: ...
			}
			if err != nil {
				local.Close()
				return
			}
			mux.Pipe(local, st)
		}()
	}
}

// The gateway side: a yamux server session per mux-mode connection and
// ServeStream per stream; policy lives in the decide function. The cap on
// streams per session counts the accepted streams only, and a stream over
// it is refused with Refuse (the answer, then a reset), so that it holds
// nothing whatever the client goes on sending.
func ExampleServeStream() {
	var conn net.Conn // a verified mTLS connection that negotiated mux.ALPN
	sess, err := yamux.Server(conn, mux.Config(zerolog.Nop()))
	if err != nil {
		return
	}
	defer sess.Close()
	const maxStreams = 1024
	for {
		ys, err := sess.AcceptStream()
		if err != nil {
			return
		}
		if sess.NumAcceptedStreams() > maxStreams {
			go func() {
				st := mux.Wrap(ys)
				_ = st.SetWriteDeadline(time.Now().Add(5 * time.Second))
				_ = mux.Refuse(st, mux.Response{Status: mux.StatusOverloaded, Reason: "too many streams on this connection"})
			}()
			continue
		}
		go func() {
			res, err := mux.ServeStream(mux.Wrap(ys), 5*time.Second, func(req mux.Request) (mux.Response, net.Conn) {
				if req.Route != "pg" {
					return mux.Response{Status: mux.StatusUnknownRoute, Reason: "no route " + req.Route}, nil
				}
				backend, err := net.DialTimeout("tcp", "10.0.0.5:5432", 5*time.Second)
				if err != nil {
					return mux.Response{Status: mux.StatusUnreachable, Reason: "backend pg unreachable"}, nil
				}
				return mux.Response{Status: mux.StatusOK}, backend
			})
			fmt.Println(res.Request.Route, res.Response.Status, res.BytesIn, res.BytesOut, err)
		}()
	}
}
