package main

import (
	"context"
	"flag"
	"fmt"
	"slices"

	waLog "go.mau.fi/whatsmeow/util/log"

	"leadmaster/engine"
	"leadmaster/kv/devicestore"
	"leadmaster/kv/devicestore/sqlimport"
)

func setupSession(fs *flag.FlagSet) func(context.Context, *cmdEnv) error {
	sqlstore := fs.String("sqlstore", "", "import: the whatsmeow SQLite store to copy devices from (stop the tool that uses it first)")
	cliente := fs.String("cliente", "", "import: the cliente whose session the imported device becomes")
	jid := fs.String("jid", "", "import: which device, when the SQLite file holds several")
	return func(ctx context.Context, env *cmdEnv) error {
		if len(env.args) != 1 || env.args[0] != "import" || *sqlstore == "" || *cliente == "" {
			return fmt.Errorf("want 'session import --sqlstore FILE.db --cliente C': %w", errUsage)
		}
		db, err := env.open(false)
		if err != nil {
			return err
		}
		defer db.Close()
		cl, err := db.Cliente(ctx, *cliente)
		if err != nil {
			return err
		}
		if cl.DeviceJID != "" {
			return fmt.Errorf("cliente %q already has a WhatsApp session (%s): log it out first: %w", cl.ID, cl.DeviceJID, engine.ErrConflict)
		}
		container, err := devicestore.New(db.Bolt(), waLog.Noop)
		if err != nil {
			return err
		}
		before, err := deviceJIDs(ctx, container)
		if err != nil {
			return err
		}
		st, err := sqlimport.ImportFile(ctx, *sqlstore, container)
		if err != nil {
			return fmt.Errorf("import %s: %w (nothing was kept)", *sqlstore, err)
		}
		after, err := deviceJIDs(ctx, container)
		if err != nil {
			return err
		}
		var added []string
		for _, j := range after {
			if !slices.Contains(before, j) {
				added = append(added, j)
			}
		}
		fmt.Fprintf(env.stdout, "imported %d device(s), %d sessions, %d identities, %d prekeys, %d sender keys, %d contacts; verified against the source\n",
			st.Devices, st.Sessions, st.Identities, st.PreKeys, st.SenderKeys, st.Contacts)
		chosen := *jid
		if chosen == "" && len(added) == 1 {
			chosen = added[0]
		}
		if chosen == "" || !slices.Contains(added, chosen) {
			return fmt.Errorf("the file held devices %v: run again with --jid to choose the cliente's one: %w", added, engine.ErrInvalid)
		}
		if err := db.SetDevice(ctx, cl.ID, chosen); err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "cliente %s now uses device %s: `leadmaster serve` logs it in without a QR\n", cl.ID, chosen)
		return nil
	}
}

func deviceJIDs(ctx context.Context, c *devicestore.Container) ([]string, error) {
	devs, err := c.GetAllDevices(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(devs))
	for _, d := range devs {
		if d.ID != nil {
			out = append(out, d.ID.String())
		}
	}
	return out, nil
}
