package sqlite

import "github.com/holdfast/holdfast/store/sqlstore"

// QueryCountInboxes is CountInboxes' query, for tests of its plan.
const QueryCountInboxes = queryCountInboxes

// SetPruneBatchSize sets the most rows one statement of
// PruneFleetSnapshots deletes, for tests of deleting in batches.
func SetPruneBatchSize(s *Store, n int) { s.Store.SetPruneBatchSize(n) }

// QueryNoticeRecordByID is NoticeRecords' query for one notice, and
// QueryInboxesByOwner InboxesByOwner's, for tests of their plans.
const (
	QueryNoticeRecordByID = sqlstore.QueryNoticeRecordByID
	QueryInboxesByOwner   = sqlstore.QueryInboxesByOwner
)
