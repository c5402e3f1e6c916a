package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/holdfast/holdfast/lifecycle"
)

// httpServer is serve's HTTP server as a lifecycle.Service. Its listener
// is opened by listenHTTP, before any service starts; Start serves on it
// and Stop shuts the server down gracefully.
type httpServer struct {
	srv   *http.Server
	ln    net.Listener
	owner lifecycle.Owner
	// failed receives the error of a Serve that ended by itself.
	failed chan error
}

var _ lifecycle.Service = (*httpServer)(nil)

// listenHTTP listens on addr for handler.
func listenHTTP(addr string, handler http.Handler) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return &httpServer{
		ln:     ln,
		failed: make(chan error, 1),
		srv: &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       120 * time.Second,
		},
	}, nil
}

// addr is the address the server listens on.
func (h *httpServer) addr() string { return h.ln.Addr().String() }

// Start serves in a goroutine that ends at Stop, or earlier with an error
// on failed.
func (h *httpServer) Start(ctx context.Context) error {
	return h.owner.Start(ctx, func(context.Context) error {
		h.owner.Go(func() {
			if err := h.srv.Serve(h.ln); !errors.Is(err, http.ErrServerClosed) {
				h.failed <- err
			}
		})
		return nil
	})
}

// Stop shuts the server down, letting the requests in flight end within
// ctx. The listener of a server that never started is closed too.
func (h *httpServer) Stop(ctx context.Context) error {
	err := h.owner.Stop(ctx, h.srv.Shutdown)
	_ = h.ln.Close() // already closed by Shutdown, unless never started
	return err
}
