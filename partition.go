package holdfast

import (
	"hash/fnv"
	"time"
)

// PartitionCount is the fixed number of sync partitions. Every inbox
// belongs to one (PartitionOf), and each partition is leased to one live
// node at a time (LeaseStore), which syncs its inboxes. It never changes:
// a different count would move inboxes between partitions.
const PartitionCount = 1024

// PartitionOf returns the partition of the inbox with the given ID: the
// 32-bit FNV-1a hash of the ID, modulo PartitionCount.
func PartitionOf(inboxID string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(inboxID))
	return int(h.Sum32() % PartitionCount)
}

// Node is one `holdfast serve` process as the store sees it: alive while
// its heartbeat is recent.
type Node struct {
	// ID names the node, unique among live nodes (a new one per process
	// start).
	ID string
	// StartedAt is when the node first sent a heartbeat.
	StartedAt time.Time
	// HeartbeatAt is the node's latest heartbeat.
	HeartbeatAt time.Time
}

// PartitionLease is one partition's lease: Node syncs the partition's
// inboxes until Until, unless it renews the lease. Epoch counts the times
// the partition changed hands (a fencing token: it grows with every
// acquisition by a node that did not hold it).
type PartitionLease struct {
	Partition int
	Node      string
	Until     time.Time
	Epoch     int64
}

// Held reports whether the lease is held by a node at now.
func (l PartitionLease) Held(now time.Time) bool { return l.Node != "" && l.Until.After(now) }

// Leadership is the lease of the health engine's leader: the one node that
// runs the fleet detectors on every node's counters (FleetStore). Epoch
// grows each time leadership changes hands.
type Leadership struct {
	Node  string
	Until time.Time
	Epoch int64
}

// Held reports whether a node holds leadership at now.
func (l Leadership) Held(now time.Time) bool { return l.Node != "" && l.Until.After(now) }

// NodeCounters is one node's health counters for one detector bucket, as
// the node shipped them: an opaque encoding the health monitor owns.
type NodeCounters struct {
	Node   string
	Bucket int64
	Data   []byte
}
