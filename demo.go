package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"leadmaster/engine"
	"leadmaster/kv"
	"leadmaster/wasim"

	_ "embed"
)

// The example campaign of the demo, embedded so that the binary alone runs it.
var (
	//go:embed examples/contactos.csv
	demoCSV string
	//go:embed examples/demo.lua
	demoScript string
)

const (
	demoCliente  = "demo"
	demoCampaign = "bienvenida"
	demoPhone    = "5491100000000" // the simulated phone that scans the QR
)

// demoRecipients says how the simulated recipients of contactos.csv behave.
var demoRecipients = struct {
	notOnWhatsApp []string
	replyBaja     []string
}{
	notOnWhatsApp: []string{"+541145678901", "+34911234567"}, // a landline and an office number
	replyBaja:     []string{"+5491134567890", "+34622334455"},
}

func setupDemo(fs *flag.FlagSet) func(context.Context, *cmdEnv) error {
	listen := fs.String("listen", "127.0.0.1:8080", "admin page and API address")
	autoscan := fs.Duration("autoscan", 8*time.Second, "the simulated phone scans the QR by itself after this long (0: only from the page's button)")
	minDelay := fs.Duration("min-delay", time.Second, "shortest pause between two messages")
	maxDelay := fs.Duration("max-delay", 3*time.Second, "longest pause between two messages")
	return func(ctx context.Context, env *cmdEnv) error {
		dir := filepath.Join(env.common.data, "demo")
		sim := wasim.New(wasim.Options{SnapshotPath: filepath.Join(dir, "wasim.json")})
		if err := sim.Start(ctx); err != nil {
			return fmt.Errorf("simulator: %w", err)
		}
		defer sim.Close()
		for _, p := range demoRecipients.notOnWhatsApp {
			sim.SetRegistered(strings.TrimPrefix(p, "+"), false)
		}
		env.common.data = dir
		db, err := env.open(false)
		if err != nil {
			return err
		}
		defer db.Close()
		if err := seedDemo(ctx, db, *minDelay, *maxDelay); err != nil {
			return fmt.Errorf("demo data: %w", err)
		}
		for _, e := range mustEnvios(ctx, db) {
			b := wasim.Behavior{Deliver: true, DeliverAfter: 500 * time.Millisecond, Read: true, ReadAfter: 2 * time.Second}
			for _, p := range demoRecipients.replyBaja {
				if p == e.Telefono {
					b.ReplyFirst = "BAJA"
				}
			}
			sim.SetBehavior(strings.TrimPrefix(e.Telefono, "+"), b)
		}
		token := randomToken()
		var app *appliance
		scan := func(ctx context.Context, cliente string) error {
			qr, err := app.sessions.WaitQR(ctx, cliente)
			if err != nil {
				return err
			}
			_, err = sim.ScanQR(ctx, qr, demoPhone)
			return err
		}
		app, err = openAppliance(db, env, applianceConfig{
			listen: *listen, adminToken: token, numberCheck: true, sendTimeout: 20 * time.Second,
			configure: sim.Configure, demoScan: scan,
			engineCfg: func(c *engine.Config) {
				c.BackoffBase, c.BackoffMax, c.NumberCheckEvery = 2*time.Second, 30*time.Second, time.Second
			},
		})
		if err != nil {
			return err
		}
		url := fmt.Sprintf("http://%s/#token=%s", app.ln.Addr(), token)
		fmt.Fprintf(env.stdout, "\nLeadMaster demo: open %s\n\n", url)
		fmt.Fprintf(env.stdout, "The simulated phone scans the QR from the page's button%s.\nCtrl-C stops the demo; its data stays in %s.\n\n",
			map[bool]string{true: fmt.Sprintf(", or by itself in %v", *autoscan), false: ""}[*autoscan > 0], dir)
		go demoDriver(ctx, env, app, scan, *autoscan)
		return app.run(ctx)
	}
}

// seedDemo creates the demo cliente and campaign and imports the CSV once.
func seedDemo(ctx context.Context, db *kv.DB, minDelay, maxDelay time.Duration) error {
	if _, err := db.Cliente(ctx, demoCliente); errors.Is(err, engine.ErrNotFound) {
		if err := db.CreateCliente(ctx, engine.Cliente{ID: demoCliente, Name: "Demo", DefaultRegion: "AR"}); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if _, err := db.Campaign(ctx, demoCampaign); !errors.Is(err, engine.ErrNotFound) {
		return err
	}
	err := db.CreateCampaign(ctx, engine.Campaign{
		ID: demoCampaign, Cliente: demoCliente, Name: "Bienvenida (demo)",
		Template: "Hola {{nombre}}, el {{producto}} ya está disponible.", Script: demoScript,
		Rate: engine.Rate{MinDelay: minDelay, MaxDelay: maxDelay, HourlyCap: 1000, DailyCap: 1000, MaxAttempts: 5},
	})
	if err != nil {
		return err
	}
	_, err = db.ImportFile(ctx, demoCampaign, kv.UploadCSV, strings.NewReader(demoCSV), nil)
	return err
}

func mustEnvios(ctx context.Context, db *kv.DB) []engine.Envio {
	es, _ := db.Envios(ctx, demoCampaign, 0, 1000, "")
	return es
}

// demoDriver scans the QR after autoscan, starts the campaign once the
// session is READY and prints the progress.
func demoDriver(ctx context.Context, env *cmdEnv, app *appliance, scan func(context.Context, string) error, autoscan time.Duration) {
	events, unsub := app.engine.Events().Subscribe(1024)
	defer unsub()
	var lastDone uint64
	var scanTimer <-chan time.Time
	if autoscan > 0 {
		scanTimer = time.After(autoscan)
	}
	go func() { // a QR exists from the start, for the page and the scan
		if _, err := app.sessions.WaitQR(ctx, demoCliente); err != nil && !errors.Is(err, engine.ErrAlreadyConnected) && ctx.Err() == nil {
			env.log.Warn("demo: no QR", "err", err)
		}
	}()
	if app.sessions.Ready(demoCliente) {
		startDemoCampaign(ctx, env, app)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-scanTimer:
			if !app.sessions.Ready(demoCliente) {
				fmt.Fprintln(env.stdout, "The simulated phone scans the QR...")
				if err := scan(ctx, demoCliente); err != nil && ctx.Err() == nil {
					env.log.Warn("demo: scan", "err", err)
				}
			}
		case ev, ok := <-events:
			if !ok {
				return
			}
			switch {
			case ev.Type == "session" && ev.Session != nil && ev.Cliente == demoCliente:
				fmt.Fprintf(env.stdout, "WhatsApp session: %s\n", ev.Session.State)
				if ev.Session.State == engine.SessionReady {
					startDemoCampaign(ctx, env, app)
				}
			case ev.Campaign == demoCampaign:
				lastDone = printProgress(ctx, env.stdout, app, lastDone)
				if ev.Type == "campaign" && ev.Status == string(engine.Terminada) {
					fmt.Fprintf(env.stdout, "\nThe campaign is done. After Ctrl-C, `leadmaster journal verify --data %s` proves what was sent.\n", env.common.data)
				}
			}
		}
	}
}

func startDemoCampaign(ctx context.Context, env *cmdEnv, app *appliance) {
	c, err := app.db.Campaign(ctx, demoCampaign)
	if err != nil || (c.Status != engine.Borrador && c.Status != engine.Pausada) {
		return
	}
	if err := app.engine.StartCampaign(ctx, demoCampaign); err != nil {
		env.log.Warn("demo: start campaign", "err", err)
		return
	}
	fmt.Fprintln(env.stdout, "Campaign started.")
}

// printProgress prints a progress bar of the demo campaign when the number
// of envíos done changed since last, and returns it.
func printProgress(ctx context.Context, w io.Writer, app *appliance, last uint64) uint64 {
	st, err := app.engine.CampaignStats(ctx, demoCampaign)
	if err != nil || st.Total == 0 {
		return last
	}
	done := st.Total - st.Open
	if done == last {
		return last
	}
	const width = 30
	bar := strings.Repeat("#", int(done*width/st.Total)) + strings.Repeat(".", width-int(done*width/st.Total))
	c := st.Counts
	fmt.Fprintf(w, "[%s] %d/%d  enviados %d (entregados %d, leídos %d)  omitidos %d  fallidos %d\n",
		bar, done, st.Total, c[engine.Enviado]+c[engine.Entregado]+c[engine.Leido], c[engine.Entregado], c[engine.Leido], c[engine.Omitido], c[engine.Fallido])
	return done
}

func randomToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "lm_demo_" + hex.EncodeToString(b)
}
