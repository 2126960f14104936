package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// EmbeddedOptions configures the NATS server that runs inside dgov when no DGOV_NATS_URL is set.
type EmbeddedOptions struct {
	// DataDir is the node's data directory; JetStream keeps its store in DataDir/nats.
	// Default "data".
	DataDir string
	// StoreDir overrides DataDir/nats.
	StoreDir string
	// Listen, as host:port, opens a TCP port for clients (port -1 picks a free one). Empty, the
	// default, opens none: dgov connects in-process, and a NATS server that may already own
	// 4222 on the machine is left alone.
	Listen string
	// ServerName names the server (default "dgov").
	ServerName string
	// Logger receives the server's log; nil keeps it quiet.
	Logger *slog.Logger
	// ReadyTimeout bounds the wait for the server to accept connections (default 10s).
	ReadyTimeout time.Duration
}

// Embedded is a running in-process NATS server with JetStream.
type Embedded struct {
	srv      *server.Server
	storeDir string
}

// StartEmbedded starts the server and waits until it accepts connections.
func StartEmbedded(opts EmbeddedOptions) (*Embedded, error) {
	storeDir := opts.StoreDir
	if storeDir == "" {
		dataDir := opts.DataDir
		if dataDir == "" {
			dataDir = "data"
		}
		storeDir = filepath.Join(dataDir, "nats")
	}
	name := opts.ServerName
	if name == "" {
		name = "dgov"
	}
	so := &server.Options{
		ServerName: name,
		JetStream:  true,
		StoreDir:   storeDir,
		DontListen: true,
		NoSigs:     true, // the dgov process owns its signals
		NoLog:      opts.Logger == nil,
	}
	if opts.Listen != "" {
		host, portStr, err := net.SplitHostPort(opts.Listen)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS listen address %q: %w", opts.Listen, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS listen address %q: bad port", opts.Listen)
		}
		so.DontListen, so.Host, so.Port = false, host, port
	}
	srv, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	if opts.Logger != nil {
		srv.SetLoggerV2(natsLog{opts.Logger.With("component", "nats")}, false, false, false)
	}
	srv.Start()
	wait := opts.ReadyTimeout
	if wait <= 0 {
		wait = 10 * time.Second
	}
	if !srv.ReadyForConnections(wait) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("embedded NATS (store %s) not ready after %s", storeDir, wait)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, errors.New("embedded NATS started without JetStream")
	}
	return &Embedded{srv: srv, storeDir: storeDir}, nil
}

// Connect opens an in-process client connection (no TCP involved).
func (e *Embedded) Connect(opts ...nats.Option) (*nats.Conn, error) {
	all := append([]nats.Option{nats.Name("dgov"), nats.InProcessServer(e.srv)}, opts...)
	nc, err := nats.Connect("", all...)
	if err != nil {
		return nil, fmt.Errorf("connect embedded NATS: %w", err)
	}
	return nc, nil
}

// StoreDir is where JetStream keeps its data.
func (e *Embedded) StoreDir() string { return e.storeDir }

// ClientURL is the nats:// URL of the TCP listener, or "" when the server does not listen.
func (e *Embedded) ClientURL() string {
	if e.srv.Addr() == nil {
		return ""
	}
	return e.srv.ClientURL()
}

// Server is the underlying server, for wiring MQTT, leaf nodes or monitoring.
func (e *Embedded) Server() *server.Server { return e.srv }

// Shutdown stops the server and waits until it has flushed its store and closed.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// Connect connects to an external NATS (DGOV_NATS_URL), reconnecting for ever when the
// connection drops.
func Connect(rawURL string, opts ...nats.Option) (*nats.Conn, error) {
	all := append([]nats.Option{
		nats.Name("dgov"),
		nats.Timeout(5 * time.Second),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
	}, opts...)
	nc, err := nats.Connect(rawURL, all...)
	if err != nil {
		return nil, fmt.Errorf("connect NATS %s: %w", redact(rawURL), err)
	}
	return nc, nil
}

// JetStream returns the JetStream context dgov uses on nc: an async publish that gets no
// acknowledgement is dropped from the pending set after 30 seconds instead of never.
func JetStream(nc *nats.Conn) (jetstream.JetStream, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(30*time.Second))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, nil
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

// natsLog sends the NATS server's log to slog.
type natsLog struct{ l *slog.Logger }

func (n natsLog) Noticef(f string, a ...any) { n.l.Info(fmt.Sprintf(f, a...)) }
func (n natsLog) Warnf(f string, a ...any)   { n.l.Warn(fmt.Sprintf(f, a...)) }
func (n natsLog) Fatalf(f string, a ...any)  { n.l.Error(fmt.Sprintf(f, a...)) }
func (n natsLog) Errorf(f string, a ...any)  { n.l.Error(fmt.Sprintf(f, a...)) }
func (n natsLog) Debugf(f string, a ...any)  { n.l.Debug(fmt.Sprintf(f, a...)) }
func (n natsLog) Tracef(f string, a ...any)  { n.l.Debug(fmt.Sprintf(f, a...)) }
