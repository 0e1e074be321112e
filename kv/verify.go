package kv

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"

	bolt "go.etcd.io/bbolt"

	"leadmaster/engine"
)

// VerifyReport is the result of Verify. OK is false when the chain is
// broken or the replay disagrees with the stored data; BadSeq names the
// first journal record at fault (0 when the fault is in the stored data
// itself), Problem says what.
type VerifyReport = engine.VerifyReport

type replayed struct {
	state engine.State
	seq   uint64 // last journal record that touched it
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
	states := map[string]map[uint64]*replayed{}
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
				m := states[e.Campaign]
				if m == nil {
					m = map[uint64]*replayed{}
					states[e.Campaign] = m
				}
				for s := e.FirstSeq; s <= e.LastSeq; s++ {
					if m[s] != nil {
						return fail(e.Seq, "import creates envío %s/%d twice", e.Campaign, s)
					}
					m[s] = &replayed{state: engine.Pendiente, seq: e.Seq}
				}
				imports[e.Campaign] = append(imports[e.Campaign], importRange{e.FirstSeq, e.LastSeq, e.Seq, e.Digest})
			case engine.KindTransition:
				r := states[e.Campaign][e.Envio]
				if r == nil {
					return fail(e.Seq, "transition of envío %s/%d that no import created", e.Campaign, e.Envio)
				}
				if r.state != e.From || !engine.CanTransition(e.From, e.To) {
					return fail(e.Seq, "envío %s/%d: %s -> %s but replay has it %s", e.Campaign, e.Envio, e.From, e.To, r.state)
				}
				r.state, r.seq = e.To, e.Seq
			}
		}
		if progress != nil {
			progress(rep.Records)
		}
		if len(entries) < verifyPage {
			break
		}
	}
	all, err := db.Campaigns(ctx, "")
	if err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	for _, c := range all {
		if states[c.ID] == nil {
			states[c.ID] = map[uint64]*replayed{}
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
func (db *DB) compareCampaign(ctx context.Context, campaign string, m map[uint64]*replayed, ranges []importRange, rep *VerifyReport) (*VerifyReport, error) {
	counts := Counts{}
	seen := 0
	ri := 0
	var h hash.Hash
	for after := uint64(0); ; {
		page, err := db.Envios(ctx, campaign, after, verifyPage, "")
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		for _, e := range page {
			after = e.Ref.Seq
			rep.Envios++
			seen++
			r := m[e.Ref.Seq]
			if r == nil {
				return &VerifyReport{Problem: fmt.Sprintf("envío %s has no import record", e.Ref)}, nil
			}
			if r.state != e.State {
				return &VerifyReport{BadSeq: r.seq, Problem: fmt.Sprintf("envío %s is %s but the journal says %s", e.Ref, e.State, r.state)}, nil
			}
			counts[e.State]++
			for ri < len(ranges) && e.Ref.Seq > ranges[ri].last {
				ri++
			}
			if ri < len(ranges) && e.Ref.Seq >= ranges[ri].first {
				if e.Ref.Seq == ranges[ri].first {
					h = sha256.New()
				}
				writeRowDigest(h, e)
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
	if seen != len(m) {
		return &VerifyReport{Problem: fmt.Sprintf("campaña %s stores %d envíos, the journal created %d", campaign, seen, len(m))}, nil
	}
	for _, s := range engine.States {
		if counts[s] != stored[s] {
			return &VerifyReport{Problem: fmt.Sprintf("campaña %s counter %s is %d, the envíos say %d", campaign, s, stored[s], counts[s])}, nil
		}
	}
	return nil, nil
}
