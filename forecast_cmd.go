package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"leadmaster/engine"
	"leadmaster/kv"
)

// fixedClock is an engine.Clock stopped at a time: a forecast from --desde.
type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

func (c fixedClock) After(time.Duration) <-chan time.Time { return nil }

func setupForecast(fs *flag.FlagSet) func(context.Context, *cmdEnv) error {
	cliente := fs.String("cliente", "", "cliente id (with --campaign: forecast a stored campaign)")
	campaign := fs.String("campaign", "", "campaña id (with --cliente)")
	ritmo := fs.String("ritmo", "", `for a FILE: the ritmo as JSON, e.g. '{"min_delay":"30s","max_delay":"90s","por_hora":40,"por_dia":300}' (default: the engine's)`)
	prog := fs.String("programacion", "", `for a FILE: the programación as JSON, e.g. '{"desde":9,"hasta":18,"zona":"America/Argentina/Buenos_Aires","cupo":200}' (default: any time, UTC)`)
	region := fs.String("region", "AR", "for a FILE: the default country of its phones written without +")
	format := fs.String("format", "", "for a FILE: csv or json (default: from its extension, else csv)")
	desde := fs.String("desde", "", "forecast from this time (RFC 3339, e.g. 2026-11-23T09:00:00-03:00; default now)")
	runs := fs.Int("corridas", engine.DefaultForecastRuns, "runs to simulate (each with its own random delays)")
	asJSON := fs.Bool("json", false, "print the forecast as JSON (as GET …/pronostico answers it)")
	return func(ctx context.Context, env *cmdEnv) error {
		fromFile := len(env.args) == 1
		if (fromFile && (*cliente != "" || *campaign != "")) || (!fromFile && (len(env.args) != 0 || *cliente == "" || *campaign == "")) {
			return fmt.Errorf("want --cliente C --campaign K (a stored campaign) or a CSV/JSON FILE with --ritmo and --programacion: %w", errUsage)
		}
		if *runs < 1 || *runs > 10000 {
			return fmt.Errorf("--corridas %d: want 1 to 10000: %w", *runs, engine.ErrInvalid)
		}
		now := time.Now()
		if *desde != "" {
			t, err := time.Parse(time.RFC3339, *desde)
			if err != nil {
				return fmt.Errorf("--desde: want a time like 2026-11-23T09:00:00-03:00: %w", engine.ErrInvalid)
			}
			now = t
		}
		var res engine.ForecastResult
		var err error
		if fromFile {
			res, err = forecastFile(ctx, env, env.args[0], *ritmo, *prog, *region, *format, now, *runs)
		} else {
			res, err = forecastStored(ctx, env, *cliente, *campaign, now, *runs)
		}
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(env.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(res)
		}
		printForecast(env.stdout, res)
		return nil
	}
}

// forecastStored forecasts a campaign of the data file (serve must not be
// running: the data file has one user at a time).
func forecastStored(ctx context.Context, env *cmdEnv, cliente, campaign string, now time.Time, runs int) (engine.ForecastResult, error) {
	db, err := env.open(true)
	if err != nil {
		return engine.ForecastResult{}, fmt.Errorf("%w (while serve runs, ask it: GET /api/clientes/%s/campaigns/%s/pronostico)", err, cliente, campaign)
	}
	defer db.Close()
	c, err := db.Campaign(ctx, campaign)
	if err != nil {
		return engine.ForecastResult{}, err
	}
	if c.Cliente != cliente {
		return engine.ForecastResult{}, fmt.Errorf("campaña %q belongs to cliente %q, not %q: %w", campaign, c.Cliente, cliente, engine.ErrInvalid)
	}
	eng := engine.New(db, nil, engine.Config{Clock: fixedClock{now}, Logger: env.log})
	return eng.Forecast(ctx, campaign, runs)
}

// forecastFile imports FILE into a scratch data file (the import's rules:
// normalization, duplicates, rejected rows) as a new cliente's campaign
// with the given ritmo and programación, and forecasts it.
func forecastFile(ctx context.Context, env *cmdEnv, name, ritmo, prog, region, format string, now time.Time, runs int) (engine.ForecastResult, error) {
	camp := engine.Campaign{ID: "pronostico", Cliente: "pronostico", Name: filepath.Base(name), Template: "-"}
	if ritmo != "" {
		r, err := engine.ParseRateJSON([]byte(ritmo))
		if err != nil {
			return engine.ForecastResult{}, fmt.Errorf("--ritmo: %v: %w", err, engine.ErrInvalid)
		}
		camp.Rate = r
	}
	if prog != "" {
		dec := json.NewDecoder(strings.NewReader(prog))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&camp.Schedule); err != nil {
			return engine.ForecastResult{}, fmt.Errorf("--programacion: %v: %w", err, engine.ErrInvalid)
		}
	}
	if err := camp.Rate.Validate(); err != nil {
		return engine.ForecastResult{}, err
	}
	if err := camp.Schedule.Validate(); err != nil {
		return engine.ForecastResult{}, err
	}
	in, err := os.Open(name)
	if err != nil {
		return engine.ForecastResult{}, err
	}
	defer in.Close()
	if format == "" {
		format = kv.UploadCSV
		if strings.EqualFold(filepath.Ext(name), ".json") {
			format = kv.UploadJSON
		}
	}
	dir, err := os.MkdirTemp("", "leadmaster-forecast-")
	if err != nil {
		return engine.ForecastResult{}, err
	}
	defer os.RemoveAll(dir)
	db, err := kv.Open(dir, kv.Options{Logger: env.log})
	if err != nil {
		return engine.ForecastResult{}, err
	}
	defer db.Close()
	// A number new at the start: a ritmo with calentamiento_dias ramps from day 1.
	if err := db.CreateCliente(ctx, engine.Cliente{ID: camp.Cliente, Name: camp.Cliente, DefaultRegion: strings.ToUpper(region), CreatedAt: now}); err != nil {
		return engine.ForecastResult{}, err
	}
	if err := db.CreateCampaign(ctx, camp); err != nil {
		return engine.ForecastResult{}, err
	}
	rep, err := db.ImportFile(ctx, camp.ID, format, in, nil)
	if err != nil {
		return engine.ForecastResult{}, fmt.Errorf("%s: %w", name, err)
	}
	fmt.Fprintf(env.stderr, "%s: %d filas: %d aceptadas, %d duplicadas, %d rechazadas\n", name, rep.Rows, rep.Accepted, rep.Duplicates, rep.RejectedCount)
	eng := engine.New(db, nil, engine.Config{Clock: fixedClock{now}, Logger: env.log})
	return eng.Forecast(ctx, camp.ID, runs)
}

// printForecast writes a forecast for a person, in the campaign's time zone.
func printForecast(w io.Writer, r engine.ForecastResult) {
	const at = "2006-01-02 15:04 MST"
	fmt.Fprintf(w, "campaña %s: %d envíos pendientes, %d corridas desde %s\n", r.Campaign, r.Pending, r.Runs, r.Start.In(r.FinP50.Location()).Format(at))
	if r.Pending == 0 {
		fmt.Fprintln(w, "nada que enviar")
		return
	}
	fmt.Fprintf(w, "fin: p10 %s, p50 %s, p90 %s (en %s)\n", r.FinP10.Format(at), r.FinP50.Format(at), r.FinP90.Format(at), roundDuration(r.FinP50.Sub(r.Start)))
	if r.Incompleto {
		fmt.Fprintln(w, "  ¡incompleto! alguna corrida no termina en cinco años: revisá la programación y el ritmo")
	}
	if e := r.Espera; e != nil {
		fmt.Fprintf(w, "primera espera: %s, desde %s hasta %s\n", e.Motivo, e.Desde.Format(at), e.Hasta.Format(at))
	}
	fmt.Fprintln(w, "por día (corrida p50):")
	for _, d := range r.PorDia {
		fmt.Fprintf(w, "  %s  %d\n", d.Dia, d.Envios)
	}
	fmt.Fprintln(w, "por ventana (corrida p50):")
	for _, v := range r.PorVentana {
		fmt.Fprintf(w, "  %s - %s  %d\n", v.Desde.Format(at), v.Hasta.Format("15:04"), v.Envios)
	}
}

// roundDuration shortens a duration for reading: minutes, or hours past a day.
func roundDuration(d time.Duration) time.Duration {
	if d > 48*time.Hour {
		return d.Round(time.Hour)
	}
	return d.Round(time.Minute)
}
