package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/config"
	"github.com/holdfast/holdfast/jobs"
	"github.com/holdfast/holdfast/store/postgres"
	"github.com/holdfast/holdfast/store/sqlite"
)

// openBackend opens the configured store engine: PostgreSQL when
// --database-url is set, otherwise SQLite in the data directory.
func openBackend(ctx context.Context, cfg *config.Config, log *slog.Logger) (*backend, error) {
	if cfg.DatabaseURL != "" {
		st, err := postgres.Open(ctx, cfg.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL store: %w", err)
		}
		return &backend{
			name:  "postgres",
			store: st,
			migrate: func(ctx context.Context) error {
				if err := st.Migrate(ctx); err != nil {
					return err
				}
				return jobs.MigratePostgres(ctx, st.Pool(), st.Schema(), log)
			},
			newJobs: func(s holdfast.Store, log *slog.Logger, opts ...jobs.Option) (jobRunner, error) {
				return jobs.NewPostgres(st.Pool(), st.Schema(), s, log, opts...)
			},
			close: func() { st.Close() },
		}, nil
	}
	if err := cfg.EnsureDataDir(); err != nil {
		return nil, err
	}
	path := filepath.Join(cfg.DataDir, "holdfast.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("open SQLite store: %w", err)
	}
	return &backend{
		name:  "sqlite",
		store: st,
		migrate: func(ctx context.Context) error {
			if err := st.Migrate(ctx); err != nil {
				return err
			}
			return jobs.MigrateSQLite(ctx, st.DB(), log)
		},
		newJobs: func(s holdfast.Store, log *slog.Logger, opts ...jobs.Option) (jobRunner, error) {
			return jobs.NewSQLite(st.DB(), s, log, opts...)
		},
		close: func() { st.Close() },
	}, nil
}
