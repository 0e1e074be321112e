package importer

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"leadmaster/engine/phone"
)

// Phone normalization (libphonenumber) costs far more than reading a CSV
// record, so the parsers hand it to a few workers. Records are read, and
// rows are delivered to fn and Reject, on the caller's goroutine, in file
// order: only phone.Normalize runs elsewhere. Rows, rejections and their
// order are the same whatever the number of workers, and so is the row at
// which an error of fn stops the parse. Only how many rows were already
// delivered when a file-level error is found varies (up to 2×workers batches
// are in flight), and those rows are to be discarded anyway.

const batchSize = 256

// item is one record on its way to fn or Reject.
type item struct {
	reason string // rejected before normalization (bad quoting, columns…)
	raw    string // the phone as written
	row    Row    // everything but Telefono
}

type batch struct {
	items []item
	done  chan struct{} // closed when the phones are normalized
}

// pipeline normalizes batches of items and delivers them in order.
type pipeline struct {
	ctx     context.Context
	region  string
	element bool // lines are JSON elements (for fn's error)
	fn      func(Row) error
	reject  func(line int, reason string)
	sum     *Summary

	work    chan *batch // nil: normalize on the caller's goroutine
	queue   []*batch    // dispatched, not delivered; oldest first
	cur     *batch
	stop    atomic.Bool
	wg      sync.WaitGroup
	maxLive int
}

func newPipeline(ctx context.Context, workers int, region string, sum *Summary, fn func(Row) error, reject func(int, string)) *pipeline {
	p := &pipeline{ctx: ctx, region: region, fn: fn, reject: reject, sum: sum, maxLive: 1}
	if workers > 1 {
		p.work = make(chan *batch)
		p.maxLive = 2 * workers
		for range workers {
			p.wg.Add(1)
			go p.worker()
		}
	}
	return p
}

func (p *pipeline) worker() {
	defer p.wg.Done()
	for b := range p.work {
		p.normalize(b)
		close(b.done)
	}
}

func (p *pipeline) normalize(b *batch) {
	for i := range b.items {
		if p.stop.Load() {
			return
		}
		it := &b.items[i]
		if it.reason != "" {
			continue
		}
		tel, err := phone.Normalize(it.raw, p.region)
		if err != nil {
			it.reason = err.Error()
			continue
		}
		it.row.Telefono = tel
	}
}

// add queues one item; it may deliver older ones.
func (p *pipeline) add(it item) error {
	if p.cur == nil {
		p.cur = &batch{items: make([]item, 0, batchSize), done: make(chan struct{})}
	}
	p.cur.items = append(p.cur.items, it)
	if len(p.cur.items) < batchSize {
		return nil
	}
	return p.dispatch()
}

// dispatch sends the current batch to the workers, then delivers the oldest
// batches while too many are in flight.
func (p *pipeline) dispatch() error {
	b := p.cur
	p.cur = nil
	if b == nil {
		return nil
	}
	if p.work == nil {
		p.normalize(b)
		close(b.done)
	} else {
		p.work <- b
	}
	p.queue = append(p.queue, b)
	for len(p.queue) >= p.maxLive {
		if err := p.deliverOldest(); err != nil {
			return err
		}
	}
	return nil
}

// flush delivers everything queued.
func (p *pipeline) flush() error {
	if err := p.dispatch(); err != nil {
		return err
	}
	for len(p.queue) > 0 {
		if err := p.deliverOldest(); err != nil {
			return err
		}
	}
	return nil
}

func (p *pipeline) deliverOldest() error {
	b := p.queue[0]
	p.queue[0] = nil
	p.queue = p.queue[1:]
	<-b.done
	for i := range b.items {
		if err := p.ctx.Err(); err != nil {
			return err
		}
		it := &b.items[i]
		if it.reason != "" {
			p.reject(it.row.Line, it.reason)
			continue
		}
		if err := p.fn(it.row); err != nil {
			unit := "línea"
			if p.element {
				unit = "elemento"
			}
			return fmt.Errorf("importer: %s %d: %w", unit, it.row.Line, err)
		}
		p.sum.Accepted++
	}
	return nil
}

// close stops the workers (abandoning undelivered items) and waits for them.
func (p *pipeline) close() {
	p.stop.Store(true)
	if p.work != nil {
		close(p.work)
		p.wg.Wait()
	}
}
