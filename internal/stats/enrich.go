package stats

import (
	"context"
	"fmt"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/kinds"
)

// Derived is the value of one derived kind (SPEC §13) for one source, and
// the name people read beside it: ("AS15169", "Google LLC"), ("DE",
// "Germany"). Name may be empty.
type Derived struct {
	Value, Name string
}

// Enricher gives the values of the kinds derived from a source (the
// country and the AS of §13). A Batch asks it for every attempt it adds,
// including when it rebuilds itself, so the counts of the derived kinds
// always follow the attempts the batch holds.
type Enricher interface {
	// Kinds names the derived kinds, fixed for the enricher's life.
	Kinds() []string
	// Begin starts a batch: answers may change between two batches (a
	// database replaced), never within one.
	Begin()
	// Enrich sets out[i] to the value of Kinds()[i] for src.
	Enrich(src []byte, out []Derived)
}

// SetEnricher makes the batch count the kinds e derives from every
// attempt's source, from the next attempt added on; nil stops it. It
// starts a batch of e.
func (b *Batch) SetEnricher(e Enricher) {
	b.enrich = e
	b.derivedKinds, b.derivedVals, b.names = nil, nil, nil
	if e == nil {
		return
	}
	b.derivedKinds = append([]string(nil), e.Kinds()...)
	b.derivedVals = make([]Derived, len(b.derivedKinds))
	b.names = make([]map[string]string, len(b.derivedKinds))
	for i := range b.names {
		b.names[i] = map[string]string{}
	}
	e.Begin()
}

// resetDerived empties what the batch keeps of the derived kinds and
// starts a new batch of the enricher.
func (b *Batch) resetDerived() {
	for _, m := range b.names {
		clear(m)
	}
	if b.enrich != nil {
		b.enrich.Begin()
	}
}

// addDerived counts src's derived values on agg's day.
func (b *Batch) addDerived(agg *dayAgg, src []byte) {
	if agg.derived == nil {
		agg.derived = make([]map[string]int64, len(b.derivedKinds))
		for i := range agg.derived {
			agg.derived[i] = make(map[string]int64)
		}
	}
	b.enrich.Enrich(src, b.derivedVals)
	for i, v := range b.derivedVals {
		if _, ok := agg.derived[i][v.Value]; !ok {
			b.members++
		}
		agg.derived[i][v.Value]++
		if v.Name != "" && b.names[i][v.Value] != v.Name {
			b.names[i][v.Value] = v.Name
		}
	}
}

// kindCount is how many kinds the batch counts: the three of every
// attempt, then the derived ones.
func (b *Batch) kindCount() int { return len(kindNames) + len(b.derivedKinds) }

// kindName names kind index k of the batch.
func (b *Batch) kindName(k int) string {
	if k < len(kindNames) {
		return kindNames[k]
	}
	return b.derivedKinds[k-len(kindNames)]
}

// membersOf returns the members of kind index k counted on agg's day.
func (b *Batch) membersOf(agg *dayAgg, k int) map[string]int64 {
	if k < len(kindNames) {
		return agg.members[k]
	}
	if agg.derived == nil {
		return nil
	}
	return agg.derived[k-len(kindNames)]
}

// NamesKey (DB 1) is the hash of the names people read beside the values
// of a derived kind: "AS15169" → "Google LLC", "DE" → "Germany". It holds
// one field per value ever counted, so it stays small (some 80,000 AS
// numbers exist, 250 countries), and the newest database's name wins.
func NamesKey(kind string) string { return "alog:names:" + kind }

// SaveNames writes the names of the batch's derived values into their
// NamesKey hashes, in one round trip. It is written before the batch is
// applied: a name is only read beside a count, and a name written for a
// batch that then fails is the same name its retry writes.
func (s *Store) SaveNames(ctx context.Context, b *Batch) error {
	n := 0
	for _, m := range b.names {
		n += len(m)
	}
	if n == 0 {
		return nil
	}
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	sent := 0
	for i, m := range b.names {
		if len(m) == 0 {
			continue
		}
		args := make([]interface{}, 0, 1+2*len(m))
		args = append(args, NamesKey(b.derivedKinds[i]))
		for v, name := range m {
			args = append(args, v, name)
		}
		if err := conn.Send("HSET", args...); err != nil {
			return fmt.Errorf("save the names of %s: %w", b.derivedKinds[i], err)
		}
		sent++
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("save the names of derived values: %w", err)
	}
	for ; sent > 0; sent-- {
		if _, err := conn.Receive(); err != nil {
			return fmt.Errorf("save the names of derived values (is %s a hash?): %w", NamesKey("…"), err)
		}
	}
	return nil
}

// Names returns the names kept beside values of kind (see NamesKey), ""
// for a value without one, in the order of values. A kind that is not
// named answers without asking Redis.
func (s *Store) Names(ctx context.Context, kind string, values []string) ([]string, error) {
	out := make([]string, len(values))
	if len(values) == 0 || !kinds.Named(kind) {
		return out, nil
	}
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	args := make([]interface{}, 0, 1+len(values))
	args = append(args, NamesKey(kind))
	for _, v := range values {
		args = append(args, v)
	}
	got, err := redis.Values(redis.DoContext(conn, ctx, "HMGET", args...))
	if err != nil {
		return nil, fmt.Errorf("read the names of %s values from %s: %w", kind, NamesKey(kind), err)
	}
	for i, v := range got {
		if b, ok := v.([]byte); ok && i < len(out) {
			out[i] = string(b)
		}
	}
	return out, nil
}
