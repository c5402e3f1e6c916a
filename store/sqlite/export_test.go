package sqlite

import (
	"context"
	"io/fs"

	"github.com/pressly/goose/v3"

	"github.com/holdfast/holdfast/store/sqlstore"
)

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

// MigrateDownTo rolls the schema back to version, for tests of a
// migration run on a database that has data.
func MigrateDownTo(ctx context.Context, s *Store, version int64) error {
	fsys, err := fs.Sub(migrations, "migration")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, s.db, fsys)
	if err != nil {
		return err
	}
	_, err = p.DownTo(ctx, version)
	return err
}
