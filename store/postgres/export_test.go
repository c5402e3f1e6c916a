package postgres

// QueryCountInboxes is CountInboxes' query, for tests of its plan.
const QueryCountInboxes = queryCountInboxes

// SetPruneBatchSize sets the most rows one statement of
// PruneFleetSnapshots deletes, for tests of deleting in batches.
func SetPruneBatchSize(s *Store, n int) { s.Store.SetPruneBatchSize(n) }
