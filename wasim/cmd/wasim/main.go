// Command wasim runs the WhatsApp simulator standalone on loopback, with its control API.
//
//	wasim -listen 127.0.0.1:7780 -snapshot /tmp/wasim.json
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"leadmaster/wasim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := wasim.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
