package kv

import bolt "go.etcd.io/bbolt"

// SetImportBatches makes the import batch sizes small for a test (the crash
// child, which is the kv_test binary) and returns a function restoring them.
func SetImportBatches(chunk, run, ichunk int) (restore func()) {
	c, r, i := importChunk, indexRun, indexChunk
	importChunk, indexRun, indexChunk = chunk, run, ichunk
	return func() { importChunk, indexRun, indexChunk = c, r, i }
}

// PhoneIndexLen counts a cliente's phone index entries.
func PhoneIndexLen(db *DB, cliente string) (int, error) {
	n := 0
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b, _ := sub(tx, bucketPhones, cliente, false)
		if b != nil {
			n = b.Stats().KeyN
		}
		return nil
	})
	return n, err
}
