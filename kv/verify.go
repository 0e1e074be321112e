package kv

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"slices"

	bolt "go.etcd.io/bbolt"

	"leadmaster/engine"
)

// VerifyReport is the result of Verify. OK is false when the chain is
// broken or the replay disagrees with the stored data; BadSeq names the
// first journal record at fault (0 when the fault is in the stored data
// itself), Problem says what.
type VerifyReport = engine.VerifyReport

// replayed is an envío's state as the journal replay has it: 16 bytes an
// envío, so that verifying a million-envío campaign stays small.
type replayed struct {
	seq   uint64 // last journal record that touched it; 0: not created
	state uint8  // index in engine.States
}

// replay holds a campaign's replayed envíos, indexed by seq-1 (imports
// number envíos densely from 1).
type replay struct {
	envios  []replayed
	created int
}

func (r *replay) get(seq uint64) *replayed {
	if seq == 0 || seq > uint64(len(r.envios)) || r.envios[seq-1].seq == 0 {
		return nil
	}
	return &r.envios[seq-1]
}

// create adds envíos first..last, refusing one created twice.
func (r *replay) create(first, last, journalSeq uint64) bool {
	if first == 0 || last < first {
		return false
	}
	if last > uint64(len(r.envios)) {
		r.envios = slices.Grow(r.envios, int(last)-len(r.envios))[:last]
	}
	pendiente := uint8(engine.Pendiente.Index())
	for s := first; s <= last; s++ {
		if r.envios[s-1].seq != 0 {
			return false
		}
		r.envios[s-1] = replayed{seq: journalSeq, state: pendiente}
	}
	r.created += int(last - first + 1)
	return true
}

type importRange struct {
	first, last, seq uint64
	digest           string
}

// verifyPage is how many journal records one read transaction checks.
const verifyPage = 8192

// Verify recomputes the journal's hash chain, replays every record into
// fresh states, and compares them with the stored envíos, the import
// digests and the counters. progress, if set, is called after each page
// with the number of records checked.
func (db *DB) Verify(ctx context.Context, progress func(records uint64)) (VerifyReport, error) {
	rep := VerifyReport{}
	// The stored campaigns bound what an import record may create, so a
	// forged record cannot make the replay allocate without limit.
	all, err := db.Campaigns(ctx, "")
	if err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	// Bounded by the envíos actually stored too: the campaign record is
	// not part of the chain.
	visible := make(map[string]uint64, len(all))
	if err := db.view(ctx, func(tx *bolt.Tx) error {
		for _, c := range all {
			var last uint64
			if b, err := sub(tx, bucketEnvios, c.ID, false); err == nil && b != nil {
				if k, _ := b.Cursor().Last(); len(k) == 8 {
					last = binary.BigEndian.Uint64(k)
				}
			}
			visible[c.ID] = min(c.Visible, last)
		}
		return nil
	}); err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	states := map[string]*replay{}
	imports := map[string][]importRange{}
	var prev [sha256.Size]byte
	fail := func(seq uint64, format string, args ...any) (VerifyReport, error) {
		rep.BadSeq, rep.Problem = seq, fmt.Sprintf(format, args...)
		return rep, nil
	}
	for next := uint64(1); ; {
		var entries []engine.Entry
		var bad *VerifyReport
		err := db.view(ctx, func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketJournal).Cursor()
			for k, v := c.Seek(u64(next)); k != nil && len(entries) < verifyPage; k, v = c.Next() {
				seq := binary.BigEndian.Uint64(k)
				if seq != next {
					bad = &VerifyReport{BadSeq: next, Problem: fmt.Sprintf("record %d is missing (next is %d)", next, seq)}
					return nil
				}
				r, err := splitRecord(v)
				if err != nil || !r.intact() {
					bad = &VerifyReport{BadSeq: seq, Problem: "record hash does not match its content"}
					return nil
				}
				var e engine.Entry
				if err := json.Unmarshal(r.payload, &e); err != nil {
					bad = &VerifyReport{BadSeq: seq, Problem: "record does not decode: " + err.Error()}
					return nil
				}
				if e.Prev != hex.EncodeToString(prev[:]) || e.Seq != seq {
					bad = &VerifyReport{BadSeq: seq, Problem: "record does not chain to the previous one"}
					return nil
				}
				copy(prev[:], r.sum)
				entries = append(entries, e)
				next++
			}
			return nil
		})
		if err != nil {
			return rep, fmt.Errorf("verify: %w", err)
		}
		if bad != nil {
			return fail(bad.BadSeq, "%s", bad.Problem)
		}
		for _, e := range entries {
			rep.Records++
			switch e.Kind {
			case engine.KindImport:
				if v, ok := visible[e.Campaign]; !ok || e.LastSeq > v {
					return fail(e.Seq, "import of envíos %s/%d-%d that the stored campaign does not have", e.Campaign, e.FirstSeq, e.LastSeq)
				}
				m := states[e.Campaign]
				if m == nil {
					m = &replay{}
					states[e.Campaign] = m
				}
				if !m.create(e.FirstSeq, e.LastSeq, e.Seq) {
					return fail(e.Seq, "import of envíos %s/%d-%d creates one twice or none", e.Campaign, e.FirstSeq, e.LastSeq)
				}
				imports[e.Campaign] = append(imports[e.Campaign], importRange{e.FirstSeq, e.LastSeq, e.Seq, e.Digest})
			case engine.KindTransition:
				var r *replayed
				if m := states[e.Campaign]; m != nil {
					r = m.get(e.Envio)
				}
				if r == nil {
					return fail(e.Seq, "transition of envío %s/%d that no import created", e.Campaign, e.Envio)
				}
				if was := engine.States[r.state]; was != e.From || !engine.CanTransition(e.From, e.To) || e.To.Index() < 0 {
					return fail(e.Seq, "envío %s/%d: %s -> %s but replay has it %s", e.Campaign, e.Envio, e.From, e.To, was)
				}
				r.state, r.seq = uint8(e.To.Index()), e.Seq
			}
		}
		if progress != nil {
			progress(rep.Records)
		}
		if len(entries) < verifyPage {
			break
		}
	}
	for _, c := range all {
		if states[c.ID] == nil {
			states[c.ID] = &replay{}
		}
	}
	for campaign, m := range states {
		if r, err := db.compareCampaign(ctx, campaign, m, imports[campaign], &rep); err != nil || r != nil {
			if err != nil {
				return rep, err
			}
			return fail(r.BadSeq, "%s", r.Problem)
		}
	}
	rep.OK = true
	return rep, nil
}

// compareCampaign checks one campaign's stored envíos, digests and
// counters against the replay.
func (db *DB) compareCampaign(ctx context.Context, campaign string, m *replay, ranges []importRange, rep *VerifyReport) (*VerifyReport, error) {
	counts := Counts{}
	seen := 0
	ri := 0
	var h hash.Hash
	var row []byte
	for after := uint64(0); ; {
		page, err := db.Envios(ctx, campaign, after, verifyPage, "")
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		for _, e := range page {
			after = e.Ref.Seq
			rep.Envios++
			seen++
			r := m.get(e.Ref.Seq)
			if r == nil {
				return &VerifyReport{Problem: fmt.Sprintf("envío %s has no import record", e.Ref)}, nil
			}
			if want := engine.States[r.state]; want != e.State {
				return &VerifyReport{BadSeq: r.seq, Problem: fmt.Sprintf("envío %s is %s but the journal says %s", e.Ref, e.State, want)}, nil
			}
			counts[e.State]++
			for ri < len(ranges) && e.Ref.Seq > ranges[ri].last {
				ri++
			}
			if ri < len(ranges) && e.Ref.Seq >= ranges[ri].first {
				if e.Ref.Seq == ranges[ri].first {
					h = sha256.New()
				}
				row = appendRowDigest(row[:0], &e)
				h.Write(row)
				if e.Ref.Seq == ranges[ri].last && hex.EncodeToString(h.Sum(nil)) != ranges[ri].digest {
					return &VerifyReport{BadSeq: ranges[ri].seq, Problem: fmt.Sprintf("imported envíos %s/%d-%d differ from what was imported", campaign, ranges[ri].first, ranges[ri].last)}, nil
				}
			}
		}
		if len(page) < verifyPage {
			break
		}
	}
	stored, err := db.Counts(ctx, campaign)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if seen != m.created {
		return &VerifyReport{Problem: fmt.Sprintf("campaña %s stores %d envíos, the journal created %d", campaign, seen, m.created)}, nil
	}
	for _, s := range engine.States {
		if counts[s] != stored[s] {
			return &VerifyReport{Problem: fmt.Sprintf("campaña %s counter %s is %d, the envíos say %d", campaign, s, stored[s], counts[s])}, nil
		}
	}
	return nil, nil
}
