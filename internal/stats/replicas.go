package stats

import (
	"errors"
	"fmt"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Waiting for replicas (SPEC §14, analyzer.toml min_replicas). A batch is
// acknowledged on the D4 queue only once MinReplicas replicas have what
// its script wrote: the counts and the applied-batch record together, in
// one script, so a replica that has one has the other. When WAIT comes
// back short, Apply fails with ErrNotReplicated; the caller treats it as an
// outage and asks IsApplied again, which says "applied" only after a later
// WAIT confirms the record. If the master dies meanwhile and an
// unconfirmed replica is promoted, the record is missing there too and the
// batch is counted once on the new master.
//
// WAIT waits for the connection's last write. A connection that only read
// the record (IsApplied, or a script that found it applied and wrote
// nothing) has no write to wait for, and WAIT would confirm at once
// whatever the replicas have; confirmRecordLua therefore rewrites the
// record with its own value, so the WAIT covers the replication stream up
// to and past the write that made it.

// DefaultReplicaWait bounds one WAIT when Store.ReplicaWait is zero: long
// enough for a replica on the same network, short enough that a lagging
// one holds a batch up for seconds, not minutes.
const DefaultReplicaWait = time.Second

// ErrNotReplicated: fewer replicas than MinReplicas acknowledged a batch
// in time. Nothing is lost and nothing is acknowledged on the D4 queue; a
// retry asks again.
var ErrNotReplicated = errors.New("too few replicas acknowledged the batch")

// confirmRecordLua rewrites the record with its own value when it names
// the batch, keeping its expiry, so that the caller's connection has a
// write for WAIT to wait for; 1 when it names the batch.
var confirmRecordScript = redis.NewScript(1, `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
  return 1
end
return 0`)

// waitReplicas runs WAIT on conn when MinReplicas is set.
func (s *Store) waitReplicas(conn redis.Conn) error {
	if s.MinReplicas <= 0 {
		return nil
	}
	wait := s.ReplicaWait
	if wait <= 0 {
		wait = DefaultReplicaWait
	}
	n, err := redis.Int(conn.Do("WAIT", s.MinReplicas, wait.Milliseconds()))
	if err != nil {
		return fmt.Errorf("wait for %d replicas: %w", s.MinReplicas, err)
	}
	if n < s.MinReplicas {
		return fmt.Errorf("%w: %d of min_replicas %d within %s; the batch stays on the queue until enough replicas have it (check the replicas with INFO replication, or lower min_replicas)",
			ErrNotReplicated, n, s.MinReplicas, wait)
	}
	return nil
}

// confirmApplied reports whether rec is its slot's last applied batch and,
// when MinReplicas is set, waits for the replicas to have the record.
func (s *Store) confirmApplied(conn redis.Conn, rec Applied) (bool, error) {
	if s.MinReplicas <= 0 {
		id, err := redis.String(conn.Do("GET", AppliedKey(rec.Queue, rec.Slot)))
		if errors.Is(err, redis.ErrNil) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("read applied record of slot %d: %w", rec.Slot, err)
		}
		return id == rec.ID, nil
	}
	ok, err := redis.Bool(confirmRecordScript.Do(conn, AppliedKey(rec.Queue, rec.Slot), rec.ID))
	if err != nil {
		return false, fmt.Errorf("confirm applied record of slot %d: %w", rec.Slot, err)
	}
	if !ok {
		return false, nil
	}
	if err := s.waitReplicas(conn); err != nil {
		return false, err
	}
	return true, nil
}
