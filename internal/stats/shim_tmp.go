package stats

import (
	"context"
	"fmt"

	"github.com/gomodule/redigo/redis"
)

type ForeignKeyError struct {
	DB              int
	Key, Type, Want string
}

func (e *ForeignKeyError) Error() string {
	return fmt.Sprintf("key %q in db %d is a %s, not a %s", e.Key, e.DB, e.Type, e.Want)
}

func (s *Store) CanCount(ctx context.Context, lockKey string) error {
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = redis.DoContext(conn, ctx, "PING")
	return err
}
