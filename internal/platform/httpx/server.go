package httpx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Server timeouts. Slow clients (a phone on a county network uploading a scanned form) get
// minutes for bodies, but nobody may hold a connection open by dribbling headers
// (Slowloris). A handler that legitimately streams longer (an export, server-sent events)
// extends its own deadline with http.ResponseController.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 2 * time.Minute
	WriteTimeout      = 2 * time.Minute
	IdleTimeout       = 2 * time.Minute
	MaxHeaderBytes    = 256 << 10
)

// Server makes an *http.Server for addr with the timeouts above.
func Server(addr string, handler http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           handler,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

// Shutdown stops srv gracefully: no new connections, in-flight requests get up to grace to
// finish, then the remaining connections are closed.
func Shutdown(srv *http.Server, grace time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		cerr := srv.Close()
		return errors.Join(fmt.Errorf("graceful shutdown: %w", err), cerr)
	}
	return nil
}

// Run serves srv on ln (nil: listen on srv.Addr) until ctx is done, then shuts it down with
// Shutdown(srv, grace). It returns nil after a clean shutdown.
func Run(ctx context.Context, srv *http.Server, ln net.Listener, grace time.Duration) error {
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", srv.Addr); err != nil {
			return fmt.Errorf("listen %s: %w", srv.Addr, err)
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	err := Shutdown(srv, grace)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
