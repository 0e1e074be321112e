package kv_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"leadmaster/engine"
	"leadmaster/kv"
	"leadmaster/kv/kvtest"
)

// pathTo lists the legal transitions that bring a fresh envío to a state.
var pathTo = map[engine.State][]engine.State{
	engine.Pendiente: {},
	engine.Enviando:  {engine.Enviando},
	engine.Enviado:   {engine.Enviando, engine.Enviado},
	engine.Entregado: {engine.Enviando, engine.Enviado, engine.Entregado},
	engine.Leido:     {engine.Enviando, engine.Enviado, engine.Leido},
	engine.Fallido:   {engine.Enviando, engine.Fallido},
	engine.Omitido:   {engine.Omitido},
	engine.Cancelado: {engine.Cancelado},
}

func drive(t *testing.T, db *kv.DB, r engine.Ref, to engine.State) {
	t.Helper()
	from := engine.Pendiente
	for _, s := range pathTo[to] {
		if err := db.Apply(context.Background(), engine.Transition{Envio: r, From: from, To: s, Text: "hola", MsgID: engine.MessageID(db.Secret(), r)}); err != nil {
			t.Fatalf("drive %s to %s: %v", r, to, err)
		}
		from = s
	}
}

type snapshot struct {
	envio   engine.Envio
	counts  kv.Counts
	journal int
}

func snap(t *testing.T, db *kv.DB, r engine.Ref) snapshot {
	t.Helper()
	ctx := context.Background()
	e, err := db.Envio(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	c, err := db.Counts(ctx, r.Campaign)
	if err != nil {
		t.Fatal(err)
	}
	j, err := db.JournalPage(ctx, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return snapshot{e, c, len(j)}
}

// TestApply_EveryPair applies every (from, to) pair of states: the legal
// ones apply with one journal record and moved counters, the illegal ones
// are refused with ErrBadTransition and write nothing.
func TestApply_EveryPair(t *testing.T) {
	db, _ := kvtest.MustOpen(t, kv.Options{})
	n := len(engine.States) * len(engine.States)
	camp := kvtest.MustCampaign(t, db, "pairs", n)
	seq := uint64(0)
	for _, from := range engine.States {
		for _, to := range engine.States {
			seq++
			r := engine.Ref{Campaign: camp, Seq: seq}
			t.Run(fmt.Sprintf("%s->%s", from, to), func(t *testing.T) {
				drive(t, db, r, from)
				before := snap(t, db, r)
				err := db.Apply(context.Background(), engine.Transition{Envio: r, From: from, To: to, Text: "hola", MsgID: engine.MessageID(db.Secret(), r), Reason: "test"})
				after := snap(t, db, r)
				if !engine.CanTransition(from, to) {
					var te *engine.TransitionError
					if !errors.Is(err, engine.ErrBadTransition) || !errors.As(err, &te) {
						t.Fatalf("err = %v, want a TransitionError wrapping ErrBadTransition", err)
					}
					if !reflect.DeepEqual(before, after) {
						t.Fatalf("refused transition wrote something:\nbefore %+v\nafter  %+v", before, after)
					}
					return
				}
				if err != nil {
					t.Fatalf("legal transition refused: %v", err)
				}
				if after.envio.State != to || after.journal != before.journal+1 {
					t.Fatalf("state %s journal %d->%d, want %s and one record", after.envio.State, before.journal, after.journal, to)
				}
				if after.counts[from] != before.counts[from]-1 || after.counts[to] != before.counts[to]+1 {
					t.Fatalf("counters did not move: before %v after %v", before.counts, after.counts)
				}
			})
		}
	}
}

func TestApply_StaleFromIsConflict(t *testing.T) {
	db, _ := kvtest.MustOpen(t, kv.Options{})
	r := engine.Ref{Campaign: kvtest.MustCampaign(t, db, "k", 1), Seq: 1}
	drive(t, db, r, engine.Enviando)
	err := db.Apply(context.Background(), engine.Transition{Envio: r, From: engine.Pendiente, To: engine.Enviando, Text: "x", MsgID: engine.MessageID(db.Secret(), r)})
	if !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
}

func TestApply_BatchIsAllOrNothing(t *testing.T) {
	db, _ := kvtest.MustOpen(t, kv.Options{})
	camp := kvtest.MustCampaign(t, db, "k", 2)
	r1, r2 := engine.Ref{Campaign: camp, Seq: 1}, engine.Ref{Campaign: camp, Seq: 2}
	before1, before2 := snap(t, db, r1), snap(t, db, r2)
	err := db.Apply(context.Background(),
		engine.Transition{Envio: r1, From: engine.Pendiente, To: engine.Enviando, Text: "x", MsgID: engine.MessageID(db.Secret(), r1)},
		engine.Transition{Envio: r2, From: engine.Pendiente, To: engine.Enviado})
	if !errors.Is(err, engine.ErrBadTransition) {
		t.Fatalf("err = %v, want ErrBadTransition", err)
	}
	if a1, a2 := snap(t, db, r1), snap(t, db, r2); !reflect.DeepEqual(before1, a1) || !reflect.DeepEqual(before2, a2) {
		t.Fatalf("a refused batch wrote its legal half")
	}
	// A batch may move one envío twice: the second step sees the first.
	err = db.Apply(context.Background(),
		engine.Transition{Envio: r1, From: engine.Pendiente, To: engine.Enviando, Text: "x", MsgID: engine.MessageID(db.Secret(), r1)},
		engine.Transition{Envio: r1, From: engine.Enviando, To: engine.Enviado})
	if err != nil {
		t.Fatal(err)
	}
}

func TestApply_WriteAheadFixesIDAndText(t *testing.T) {
	db, dir := kvtest.MustOpen(t, kv.Options{})
	ctx := context.Background()
	r := engine.Ref{Campaign: kvtest.MustCampaign(t, db, "k", 1), Seq: 1}
	if err := db.Apply(ctx, engine.Transition{Envio: r, From: engine.Pendiente, To: engine.Enviando}); !errors.Is(err, engine.ErrInvalid) {
		t.Fatalf("enviando without text: err = %v, want ErrInvalid", err)
	}
	next := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	steps := []engine.Transition{
		{Envio: r, From: engine.Pendiente, To: engine.Enviando, Text: "primero", MsgID: engine.MessageID(db.Secret(), r)},
		{Envio: r, From: engine.Enviando, To: engine.Pendiente, Reason: "timeout", NextAttempt: next},
		{Envio: r, From: engine.Pendiente, To: engine.Enviando, Text: "segundo", MsgID: engine.MessageID(db.Secret(), r)},
	}
	var ids []string
	for _, s := range steps {
		if err := db.Apply(ctx, s); err != nil {
			t.Fatal(err)
		}
		e, _ := db.Envio(ctx, r)
		ids = append(ids, e.MsgID)
	}
	e, _ := db.Envio(ctx, r)
	if e.Mensaje != "primero" || e.Attempts != 2 {
		t.Fatalf("mensaje %q attempts %d, want the first text kept and 2 attempts", e.Mensaje, e.Attempts)
	}
	want := engine.MessageID(db.Secret(), r)
	for _, id := range ids {
		if id != want || len(id) != 22 || id[:4] != "3EB0" {
			t.Fatalf("message ids %v, want %s every time", ids, want)
		}
	}
	if got, err := db.EnvioByMsgID(ctx, want); err != nil || got.Ref != r {
		t.Fatalf("by msg id: %v %v", got.Ref, err)
	}
	// An id is forever: a write-ahead with another one is refused.
	if err := db.Apply(ctx, engine.Transition{Envio: r, From: engine.Enviando, To: engine.Pendiente, Reason: "timeout"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Apply(ctx, engine.Transition{Envio: r, From: engine.Pendiente, To: engine.Enviando, Text: "x", MsgID: "3EB0OTHER"}); !errors.Is(err, engine.ErrInvalid) {
		t.Fatalf("write-ahead with another id: err = %v, want ErrInvalid", err)
	}
	if err := db.Apply(ctx, engine.Transition{Envio: r, From: engine.Pendiente, To: engine.Enviando, Text: "x"}); !errors.Is(err, engine.ErrInvalid) {
		t.Fatalf("write-ahead without an id: err = %v, want ErrInvalid", err)
	}
	_ = dir
}

func TestNextDue_RetriesThenImportOrder(t *testing.T) {
	db, _ := kvtest.MustOpen(t, kv.Options{})
	ctx := context.Background()
	camp := kvtest.MustCampaign(t, db, "k", 4)
	now := time.Now()
	ref := func(s uint64) engine.Ref { return engine.Ref{Campaign: camp, Seq: s} }
	must := func(ts ...engine.Transition) {
		t.Helper()
		if err := db.Apply(ctx, ts...); err != nil {
			t.Fatal(err)
		}
	}
	check := func(want uint64, wantOK bool) {
		t.Helper()
		d, err := db.NextDue(ctx, camp, now)
		if err != nil || d.Ok != wantOK || (wantOK && d.Envio.Seq != want) {
			t.Fatalf("NextDue = %+v %v, want seq %d ok %v", d, err, want, wantOK)
		}
	}
	check(1, true)
	must(engine.Transition{Envio: ref(2), From: engine.Pendiente, To: engine.Omitido, Reason: "optout"})
	must(engine.Transition{Envio: ref(1), From: engine.Pendiente, To: engine.Enviando, Text: "a", MsgID: engine.MessageID(db.Secret(), ref(1))})
	check(3, true) // 2 was omitted
	must(engine.Transition{Envio: ref(1), From: engine.Enviando, To: engine.Pendiente, NextAttempt: now.Add(-time.Second)})
	check(1, true) // a due retry goes first
	must(engine.Transition{Envio: ref(1), From: engine.Pendiente, To: engine.Enviando, Text: "a", MsgID: engine.MessageID(db.Secret(), ref(1))},
		engine.Transition{Envio: ref(1), From: engine.Enviando, To: engine.Pendiente, NextAttempt: now.Add(time.Minute)})
	check(3, true)
	must(engine.Transition{Envio: ref(3), From: engine.Pendiente, To: engine.Cancelado},
		engine.Transition{Envio: ref(4), From: engine.Pendiente, To: engine.Cancelado})
	d, _ := db.NextDue(ctx, camp, now)
	if d.Ok || !d.Next.Equal(now.Add(time.Minute).UTC()) {
		t.Fatalf("NextDue = %+v, want nothing now and the retry in a minute", d)
	}
}

func TestOpen_SecondOpenFailsFast(t *testing.T) {
	db, dir := kvtest.MustOpen(t, kv.Options{})
	_ = db
	start := time.Now()
	_, err := kv.Open(dir, kv.Options{LockTimeout: 300 * time.Millisecond})
	if !errors.Is(err, kv.ErrLocked) {
		t.Fatalf("err = %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("second open took %v", d)
	}
}
