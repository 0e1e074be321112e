package wasim

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
)

// Main runs a standalone simulator until ctx ends (the caller maps SIGINT/SIGTERM to that):
// the websocket and the control API on one loopback port. It prints one line
// "wasim listening on http://ADDR" to stdout once it accepts connections. args are the
// command-line flags without the program name; the return value is the exit status.
// `wasim/cmd/wasim` wraps it; the leadmaster binary can expose it as a subcommand.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wasim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:7780", "address to listen on (loopback: the control API has no authentication)")
	snapshot := fs.String("snapshot", "", "JSON file holding accounts and linked devices across restarts (empty: in memory only)")
	verbose := fs.Bool("v", false, "log every stanza")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	s := New(Options{
		Addr:         *listen,
		SnapshotPath: *snapshot,
		Logger:       slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	})
	if err := s.Start(ctx); err != nil {
		fmt.Fprintln(stderr, "wasim:", err)
		return 1
	}
	fmt.Fprintf(stdout, "wasim listening on %s\n", s.URL())
	<-ctx.Done()
	if err := s.Close(); err != nil {
		fmt.Fprintln(stderr, "wasim: close:", err)
		return 1
	}
	return 0
}
