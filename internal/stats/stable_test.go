package stats_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// A ranking read in place is exact when its period is not counted into
// meanwhile, and says so (ErrMoved) when it is; a period without a total
// is read from a snapshot.
func TestOpenStable(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	ctx := context.Background()
	day := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	b := stats.NewBatch()
	for i := 0; i < 500; i++ {
		b.Add(day, []byte("h"), []byte("u"), []byte(fmt.Sprint("src", i%300)))
	}
	if err := s.Apply(ctx, b, nil); err != nil {
		t.Fatal(err)
	}
	key := stats.StatsKey("202603", stats.KindSrc)
	readAll := func(r *stats.Ranking, during func()) (int, error) {
		defer r.Close()
		n := 0
		for {
			chunk, err := r.Next()
			if err != nil || chunk == nil {
				return n, err
			}
			if n == 0 && during != nil {
				during()
			}
			n += len(chunk)
		}
	}

	r, err := s.OpenStable(ctx, key, "202603", 50, stats.ReplyBytes)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := readAll(r, nil); err != nil || n != 300 {
		t.Fatalf("quiet read: %d members, %v; want 300, nil", n, err)
	}

	r, err = s.OpenStable(ctx, key, "202603", 50, stats.ReplyBytes)
	if err != nil {
		t.Fatal(err)
	}
	n, err := readAll(r, func() {
		late := stats.NewBatch()
		late.Add(day, []byte("h"), []byte("u"), []byte("src7"))
		if err := s.Apply(ctx, late, nil); err != nil {
			t.Fatal(err)
		}
	})
	if !errors.Is(err, stats.ErrMoved) {
		t.Fatalf("read counted into: %d members, %v; want ErrMoved", n, err)
	}

	// Another month of the same year, counted meanwhile, does not move
	// this one.
	r, err = s.OpenStable(ctx, key, "202603", 50, stats.ReplyBytes)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := readAll(r, func() {
		other := stats.NewBatch()
		other.Add(day.AddDate(0, 1, 0), []byte("h"), []byte("u"), []byte("src7"))
		if err := s.Apply(ctx, other, nil); err != nil {
			t.Fatal(err)
		}
	}); err != nil || n != 300 {
		t.Fatalf("read while another month was counted: %d members, %v; want 300, nil", n, err)
	}

	// No total (counted by another tool): read from a copy.
	c := srv.Conn(1)
	if _, err := c.Do("ZADD", "2019:statssrc", 1, "a", 2, "b"); err != nil {
		t.Fatal(err)
	}
	r, err = s.OpenStable(ctx, "2019:statssrc", "2019", 50, stats.ReplyBytes)
	if err != nil {
		t.Fatal(err)
	}
	if copies, _ := redis.Strings(c.Do("KEYS", "alog:snapshot:*")); len(copies) != 1 {
		t.Errorf("a period without a total read without a snapshot (%v)", copies)
	}
	if n, err := readAll(r, nil); err != nil || n != 2 {
		t.Fatalf("read of a period without total: %d, %v", n, err)
	}
}
