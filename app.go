package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"go.mau.fi/whatsmeow"

	"leadmaster/admin"
	"leadmaster/assets"
	"leadmaster/engine"
	"leadmaster/engine/wa"
	"leadmaster/kv"
	"leadmaster/kv/devicestore"
	"leadmaster/wasim"
)

// appliance is the running product: the data file, the WhatsApp sessions,
// the send engine and the admin API.
type appliance struct {
	db       *kv.DB
	sessions *wa.Manager
	engine   *engine.Engine
	admin    *admin.Server
	ln       net.Listener
	log      *slog.Logger
}

// applianceConfig is what serve and demo set.
type applianceConfig struct {
	listen      string
	adminToken  string
	numberCheck bool
	sendTimeout time.Duration
	// configure points whatsmeow at a simulator (demo, tests); nil means
	// the real WhatsApp.
	configure func(*whatsmeow.Client)
	demoScan  func(ctx context.Context, cliente string) error
	engineCfg func(*engine.Config)
}

// openAppliance wires the parts on an open data file and binds the admin
// listener (so a caller knows the address before Run).
func openAppliance(db *kv.DB, env *cmdEnv, cfg applianceConfig) (*appliance, error) {
	inbound := &engine.InboundRelay{}
	devices, err := devicestore.New(db.Bolt(), wa.StoreLog(env.log))
	if err != nil {
		return nil, fmt.Errorf("open device store: %w", err)
	}
	mgr, err := wa.NewManager(db, devices, inbound, wa.Options{Logger: env.log, Configure: cfg.configure})
	if err != nil {
		return nil, err
	}
	hooks := &scriptHooks{}
	ecfg := engine.Config{Logger: env.log, NumberCheck: cfg.numberCheck, SendTimeout: cfg.sendTimeout, HooksFor: hooks.hooksFor,
		FreeSpace: freeSpace(filepath.Dir(db.Path()))}
	if cfg.engineCfg != nil {
		cfg.engineCfg(&ecfg)
	}
	eng := engine.New(db, mgr, ecfg)
	inbound.Set(eng)
	// Uploads wait in DATA/uploads for their import; a crash's leftovers
	// imported nothing and go.
	spool := filepath.Join(filepath.Dir(db.Path()), "uploads")
	if err := admin.CleanSpool(spool); err != nil {
		mgr.Close()
		return nil, fmt.Errorf("clean %s: %w", spool, err)
	}
	srv, err := admin.New(admin.Options{
		Engine: eng, Data: db, Sessions: mgr, UI: assets.FS, Logger: env.log, Outbox: db,
		AdminToken: cfg.adminToken, DemoScan: cfg.demoScan, SpoolDir: spool,
	})
	if err != nil {
		mgr.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		srv.Close()
		mgr.Close()
		return nil, fmt.Errorf("listen %s: %w", cfg.listen, err)
	}
	return &appliance{db: db, sessions: mgr, engine: eng, admin: srv, ln: ln, log: env.log}, nil
}

// run serves until ctx ends, then stops in order: the admin API (no new
// commands), the engine (in-flight sends end and commit), the sessions.
func (a *appliance) run(ctx context.Context) error {
	engineCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEngine()
	// An engine that stops by itself (it could not start) stops the
	// appliance too: serving a page while nothing sends would hide it.
	serveCtx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	engineDone := make(chan error, 1)
	go func() {
		err := a.engine.Run(engineCtx)
		if err != nil && engineCtx.Err() == nil {
			a.log.Error("the send engine stopped; stopping", "err", err)
			stopServing()
		}
		engineDone <- err
	}()
	if err := a.sessions.StartAll(serveCtx); err != nil && !errors.Is(err, context.Canceled) {
		stopEngine()
		<-engineDone
		a.sessions.Close()
		return fmt.Errorf("start sessions: %w", err)
	}
	adminErr := a.admin.Serve(serveCtx, a.ln)
	stopEngine()
	engineErr := <-engineDone
	sessErr := a.sessions.Close()
	return errors.Join(adminErr, engineErr, sessErr)
}

// wasimConfigure points whatsmeow clients at a standalone simulator.
func wasimConfigure(addr string) func(*whatsmeow.Client) {
	hc := wasim.HTTPClient(addr)
	root := wasim.RootPublicKey()
	return func(cli *whatsmeow.Client) { wasim.ConfigureClient(cli, hc, root) }
}
