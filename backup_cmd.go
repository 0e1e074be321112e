package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"leadmaster/kv"
)

func setupBackup(fs *flag.FlagSet) func(context.Context, *cmdEnv) error {
	output := fs.String("o", "", "write the snapshot to this file (required; - for stdout)")
	return func(ctx context.Context, env *cmdEnv) error {
		if *output == "" || len(env.args) != 0 {
			return fmt.Errorf("want 'backup -o FILE': %w", errUsage)
		}
		db, err := env.open(true)
		if err != nil {
			return fmt.Errorf("%w (while serve runs, take the backup from the admin API: GET /api/backup)", err)
		}
		defer db.Close()
		if *output == "-" {
			_, err := db.Backup(ctx, env.stdout)
			return err
		}
		n, err := writeFileAtomic(*output, func(w io.Writer) (int64, error) { return db.Backup(ctx, w) })
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stderr, "backup: %d bytes written to %s\n", n, *output)
		return nil
	}
}

func setupRestore(fs *flag.FlagSet) func(context.Context, *cmdEnv) error {
	force := fs.Bool("force", false, "replace an existing data file (it is kept as leadmaster.db.bak)")
	return func(ctx context.Context, env *cmdEnv) error {
		if len(env.args) != 1 {
			return fmt.Errorf("want 'restore BACKUP_FILE': %w", errUsage)
		}
		src := env.args[0]
		// The backup must be a data file whose journal verifies before it
		// replaces anything.
		tmpDir, err := os.MkdirTemp(env.common.data, ".restore-")
		if err != nil {
			if err := os.MkdirAll(env.common.data, 0o700); err != nil {
				return err
			}
			if tmpDir, err = os.MkdirTemp(env.common.data, ".restore-"); err != nil {
				return err
			}
		}
		defer os.RemoveAll(tmpDir)
		staged := filepath.Join(tmpDir, kv.FileName)
		if _, err := writeFileAtomic(staged, func(w io.Writer) (int64, error) {
			f, err := os.Open(src)
			if err != nil {
				return 0, err
			}
			defer f.Close()
			return io.Copy(w, f)
		}); err != nil {
			return err
		}
		check, err := kv.Open(tmpDir, kv.Options{ReadOnly: true, Logger: env.log})
		if err != nil {
			return fmt.Errorf("%s is not a leadmaster data file: %w", src, err)
		}
		rep, err := check.Verify(ctx, nil)
		check.Close()
		if err != nil {
			return err
		}
		if !rep.OK {
			return fmt.Errorf("%s does not verify: record %d: %s", src, rep.BadSeq, rep.Problem)
		}
		dst := filepath.Join(env.common.data, kv.FileName)
		if _, err := os.Stat(dst); err == nil {
			if !*force {
				return fmt.Errorf("%s exists: restore --force replaces it (keeping it as %s.bak)", dst, kv.FileName)
			}
			// Take the lock: a running serve keeps the file.
			db, err := kv.Open(env.common.data, kv.Options{ReadOnly: true, Logger: env.log})
			if err != nil {
				return err
			}
			db.Close()
			if err := os.Rename(dst, dst+".bak"); err != nil {
				return err
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err := os.Rename(staged, dst); err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "restored %s: %d journal records verify, %d envíos\n", dst, rep.Records, rep.Envios)
		return nil
	}
}

// writeFileAtomic writes path through a temporary file, fsyncs and renames
// it, so a crash leaves either nothing or the whole file.
func writeFileAtomic(path string, write func(io.Writer) (int64, error)) (int64, error) {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	n, err := write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	return n, err
}
