// Command leadmaster runs WhatsApp campaigns from a small business's own
// numbers: one binary, one data file, a local admin page.
//
// See README.md, or run `leadmaster help`.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"leadmaster/engine"
	"leadmaster/kv"
)

// version is set at build time: -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	usage   string // arguments after the flags
	setup   func(fs *flag.FlagSet) func(ctx context.Context, env *cmdEnv) error
}

// cmdEnv is what a command runs with.
type cmdEnv struct {
	args   []string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
	common *commonFlags
}

type commonFlags struct {
	data      string
	logFormat string
	logLevel  string
}

var commands = []command{
	{"serve", "run the appliance: WhatsApp sessions, the send engine and the admin page, until SIGTERM", "", setupServe},
	{"demo", "run the appliance on a built-in WhatsApp simulator with a demo cliente and campaign", "", setupDemo},
	{"import", "import envíos into a campaign from a CSV or JSON file", "FILE", setupImport},
	{"forecast", "forecast when a campaign ends and how its sends spread over days and windows (a stored campaign, or a CSV/JSON file)", "[FILE]", setupForecast},
	{"session", "move a WhatsApp session in from a whatsmeow SQLite store (no new QR)", "import", setupSession},
	{"backup", "write a consistent snapshot of the data file (stopped appliance; while serving use GET /api/backup)", "", setupBackup},
	{"restore", "put a backup in place as the data file, after verifying its journal", "BACKUP_FILE", setupRestore},
	{"journal", "verify the journal's hash chain and replay, or export it", "verify|export", setupJournal},
	{"version", "print the version", "", setupVersion},
}

// exitError carries a specific exit status.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// Main runs leadmaster with args and returns the process exit status.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	var cmd *command
	for i := range commands {
		if commands[i].name == args[0] {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "leadmaster: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	fs := flag.NewFlagSet("leadmaster "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	common := &commonFlags{}
	fs.StringVar(&common.data, "data", "./data", "data directory (holds "+kv.FileName+")")
	fs.StringVar(&common.logFormat, "log-format", "auto", "log format: auto (text on a terminal, JSON otherwise), text or json")
	fs.StringVar(&common.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	run := cmd.setup(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: leadmaster %s [flags] %s\n\n%s.\n\nFlags (each also from the environment as LEADMASTER_<NAME>, e.g. LEADMASTER_DATA):\n", cmd.name, cmd.usage, cmd.summary)
		fs.PrintDefaults()
	}
	positional, err := parseInterspersed(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := applyEnv(fs); err != nil {
		fmt.Fprintf(stderr, "leadmaster %s: %v\n", cmd.name, err)
		return 2
	}
	log, err := newLogger(stderr, common.logFormat, common.logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "leadmaster %s: %v\n", cmd.name, err)
		return 2
	}
	env := &cmdEnv{args: positional, stdin: stdin, stdout: stdout, stderr: stderr, log: log, common: common}
	if err := run(ctx, env); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		fmt.Fprintf(stderr, "leadmaster %s: %v\n", cmd.name, err)
		if errors.Is(err, engine.ErrInvalid) || errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

var errUsage = errors.New("usage")

// parseInterspersed parses flags that may come before, between or after the
// positional arguments ("journal verify --data d"); "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), nil
		}
		positional, args = append(positional, rest[0]), rest[1:]
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `leadmaster %s: WhatsApp campaigns from your own numbers, with proof of what was sent.

usage: leadmaster <command> [flags] [args]

commands:
`, version)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Every command takes --data DIR (default ./data), --log-format and --log-level;
every flag can also be set as LEADMASTER_<FLAG> in the environment (flags win).
Run 'leadmaster <command> --help' for the flags of a command.
`)
}

// applyEnv sets each flag not given on the command line from
// LEADMASTER_<NAME> (upper case, '-' as '_').
func applyEnv(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := "LEADMASTER_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok && !given[f.Name] && err == nil {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s=%q: %w", name, v, e)
			}
		}
	})
	return err
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "auto":
		if isTerminal(w) {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want auto, text or json", format)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (e *cmdEnv) open(readOnly bool) (*kv.DB, error) {
	return kv.Open(e.common.data, kv.Options{Logger: e.log, ReadOnly: readOnly})
}

func setupVersion(fs *flag.FlagSet) func(context.Context, *cmdEnv) error {
	return func(_ context.Context, env *cmdEnv) error {
		fmt.Fprintf(env.stdout, "leadmaster %s\n", version)
		return nil
	}
}

func setupServe(fs *flag.FlagSet) func(context.Context, *cmdEnv) error {
	listen := fs.String("listen", "127.0.0.1:8080", "admin page and API address (keep it on loopback, or put TLS in front)")
	adminToken := fs.String("admin-token", "", "admin token (better from the environment, LEADMASTER_ADMIN_TOKEN); empty: generated at the first start and logged once")
	numberCheck := fs.Bool("number-check", true, "check that a phone is on WhatsApp before its first message (cached, batched)")
	sendTimeout := fs.Duration("send-timeout", 30*time.Second, "longest wait for WhatsApp's ack of one message")
	checkEvery := fs.Duration("number-check-every", 10*time.Second, "at most one WhatsApp number check (a batch of up to 50 phones) per this interval and cliente")
	backoffBase := fs.Duration("backoff-base", 30*time.Second, "first wait before a failed envío is retried (doubles, with jitter)")
	backoffMax := fs.Duration("backoff-max", 30*time.Minute, "longest wait between retries")
	breakerFailures := fs.Int("breaker-failures", 5, "consecutive failed sends that pause a cliente's sending")
	breakerCooldown := fs.Duration("breaker-cooldown", 10*time.Minute, "how long sending stays paused after those failures")
	reachDefault := fs.Duration("reach-lock-default", 24*time.Hour, "how long new chats stay locked after WhatsApp answers 463 without naming the end of its timelock (warm recipients are still served)")
	msgMinDelay := fs.Duration("messages-min-delay", engine.MessagesRate.MinDelay, "shortest pause after a transactional message (POST …/mensajes) before the number's next send")
	msgMaxDelay := fs.Duration("messages-max-delay", engine.MessagesRate.MaxDelay, "longest pause after a transactional message")
	msgHourly := fs.Int("messages-hourly-cap", engine.MessagesRate.HourlyCap, "transactional messages per hour and cliente, at most")
	msgDaily := fs.Int("messages-daily-cap", engine.MessagesRate.DailyCap, "transactional messages per day and cliente, at most")
	minFreeMB := fs.Int("min-free-mb", 32, "free space (MiB) the data file's disk must keep: below it no envío is written ahead and sending pauses, named on the page, /readyz and /metrics")
	wasimAddr := fs.String("wasim", "", "talk to a standalone WhatsApp simulator at this address instead of WhatsApp (tests)")
	return func(ctx context.Context, env *cmdEnv) error {
		for name, d := range map[string]time.Duration{"send-timeout": *sendTimeout, "number-check-every": *checkEvery,
			"backoff-base": *backoffBase, "backoff-max": *backoffMax, "breaker-cooldown": *breakerCooldown, "reach-lock-default": *reachDefault} {
			if d <= 0 {
				return fmt.Errorf("--%s must be positive, not %v: %w", name, d, errUsage)
			}
		}
		if *minFreeMB <= 0 {
			return fmt.Errorf("--min-free-mb must be positive: %w", errUsage)
		}
		if *msgMinDelay <= 0 || *msgMaxDelay < *msgMinDelay || *msgHourly <= 0 || *msgDaily <= 0 {
			return fmt.Errorf("--messages-min-delay must be positive, --messages-max-delay at least it, and the messages caps positive: %w", errUsage)
		}
		if *breakerFailures <= 0 || *backoffMax < *backoffBase {
			return fmt.Errorf("--breaker-failures must be positive and --backoff-max at least --backoff-base: %w", errUsage)
		}
		db, err := env.open(false)
		if err != nil {
			return err
		}
		defer db.Close()
		cfg := applianceConfig{listen: *listen, adminToken: *adminToken, numberCheck: *numberCheck, sendTimeout: *sendTimeout,
			engineCfg: func(c *engine.Config) {
				c.NumberCheckEvery, c.BackoffBase, c.BackoffMax = *checkEvery, *backoffBase, *backoffMax
				c.BreakerThreshold, c.BreakerCooldown = *breakerFailures, *breakerCooldown
				c.ReachLockDefault = *reachDefault
				c.MinFreeBytes = uint64(*minFreeMB) << 20
				c.MessagesRate = engine.Rate{MinDelay: *msgMinDelay, MaxDelay: *msgMaxDelay, HourlyCap: *msgHourly, DailyCap: *msgDaily}
			}}
		if *wasimAddr != "" {
			cfg.configure = wasimConfigure(*wasimAddr)
		}
		app, err := openAppliance(db, env, cfg)
		if err != nil {
			return err
		}
		env.log.Info("leadmaster serving", "version", version, "data", db.Path(), "addr", app.ln.Addr().String())
		err = app.run(ctx)
		env.log.Info("stopped")
		return err
	}
}

func setupImport(fs *flag.FlagSet) func(context.Context, *cmdEnv) error {
	cliente := fs.String("cliente", "", "cliente id (required)")
	campaign := fs.String("campaign", "", "campaña id (required)")
	format := fs.String("format", "", "csv or json (default: from the file's extension, else csv)")
	create := fs.Bool("create", false, "create the cliente and the campaña if they do not exist")
	region := fs.String("region", "AR", "with --create: the cliente's default country for phones without +")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	return func(ctx context.Context, env *cmdEnv) error {
		if *cliente == "" || *campaign == "" || len(env.args) != 1 {
			return fmt.Errorf("want --cliente C --campaign K FILE (or - for stdin): %w", errUsage)
		}
		in, name := env.stdin, env.args[0]
		if name != "-" {
			f, err := os.Open(name)
			if err != nil {
				return err
			}
			defer f.Close()
			in = f
		}
		if *format == "" {
			*format = kv.UploadCSV
			if strings.EqualFold(filepath.Ext(name), ".json") {
				*format = kv.UploadJSON
			}
		}
		db, err := env.open(false)
		if err != nil {
			return err
		}
		defer db.Close()
		if err := ensureCampaign(ctx, db, *cliente, *campaign, *region, *create); err != nil {
			return err
		}
		start := time.Now()
		last := start
		rep, err := db.ImportFile(ctx, *campaign, *format, in, func(bytes int64, rows int) {
			if time.Since(last) > time.Second {
				last = time.Now()
				fmt.Fprintf(env.stderr, "  %d filas leídas (%.1f MB)\n", rows, float64(bytes)/1e6)
			}
		})
		if err != nil {
			return fmt.Errorf("%w (nothing of this file was imported)", err)
		}
		if *asJSON {
			enc := json.NewEncoder(env.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(rep)
		}
		fmt.Fprintf(env.stdout, "%s: %d filas en %v: %d aceptadas, %d duplicadas, %d suprimidas, %d rechazadas\n",
			name, rep.Rows, time.Since(start).Round(time.Millisecond), rep.Accepted, rep.Duplicates, rep.Suppressed, rep.RejectedCount)
		for _, r := range rep.Rejected {
			fmt.Fprintf(env.stdout, "  línea %d: rechazada: %s\n", r.Line, r.Reason)
		}
		for _, s := range rep.Skipped {
			fmt.Fprintf(env.stdout, "  línea %d: omitida (%s): %s\n", s.Line, s.Reason, s.Telefono)
		}
		return nil
	}
}

// ensureCampaign checks that the campaign exists and belongs to the
// cliente, creating both when create is set.
func ensureCampaign(ctx context.Context, db *kv.DB, cliente, campaign, region string, create bool) error {
	if _, err := db.Cliente(ctx, cliente); errors.Is(err, engine.ErrNotFound) && create {
		if err := db.CreateCliente(ctx, engine.Cliente{ID: cliente, Name: cliente, DefaultRegion: strings.ToUpper(region)}); err != nil {
			return err
		}
	} else if err != nil {
		return fmt.Errorf("%w (use --create to create it)", err)
	}
	c, err := db.Campaign(ctx, campaign)
	if errors.Is(err, engine.ErrNotFound) && create {
		return db.CreateCampaign(ctx, engine.Campaign{ID: campaign, Cliente: cliente, Name: campaign})
	}
	if err != nil {
		return fmt.Errorf("%w (use --create to create it)", err)
	}
	if c.Cliente != cliente {
		return fmt.Errorf("campaña %q belongs to cliente %q, not %q: %w", campaign, c.Cliente, cliente, engine.ErrInvalid)
	}
	return nil
}

func setupJournal(fs *flag.FlagSet) func(context.Context, *cmdEnv) error {
	format := fs.String("format", "ndjson", "export: ndjson or csv")
	after := fs.Uint64("after", 0, "export: only records with a sequence number above this")
	output := fs.String("o", "-", "export: output file (- for stdout)")
	return func(ctx context.Context, env *cmdEnv) error {
		if len(env.args) != 1 || (env.args[0] != "verify" && env.args[0] != "export") {
			return fmt.Errorf("want 'journal verify' or 'journal export': %w", errUsage)
		}
		db, err := env.open(true)
		if err != nil {
			return err
		}
		defer db.Close()
		if env.args[0] == "export" {
			var out io.Writer = env.stdout
			if *output != "-" {
				f, err := os.Create(*output)
				if err != nil {
					return err
				}
				defer f.Close()
				out = f
			}
			return db.ExportJournal(ctx, out, *format, *after)
		}
		rep, err := db.Verify(ctx, func(n uint64) { env.log.Debug("verifying", "records", n) })
		if err != nil {
			return err
		}
		if !rep.OK {
			fmt.Fprintf(env.stdout, "journal verify: FAILED at record %d: %s (%d records read)\n", rep.BadSeq, rep.Problem, rep.Records)
			return exitError{1}
		}
		fmt.Fprintf(env.stdout, "journal verify: ok: %d records chain, and replaying them gives the %d stored envíos and their counters\n", rep.Records, rep.Envios)
		return nil
	}
}
