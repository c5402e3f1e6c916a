package config_test

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/config"
)

func TestFlagsAndEnvironment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config.Config
		wantErr string
	}{
		{
			name: "defaults",
			want: config.Config{Listen: "127.0.0.1:8080", DataDir: "./holdfast-data", LogFormat: "text", LogLevel: "info", ShutdownTimeout: 10 * time.Second, SyncInterval: time.Minute, SyncConcurrency: 32, SendTimeout: 6 * time.Minute},
		},
		{
			name: "environment fills what flags leave",
			env:  map[string]string{"HOLDFAST_LISTEN": ":9000", "HOLDFAST_DATA_DIR": "/var/lib/hf", "HOLDFAST_LOG_FORMAT": "json", "HOLDFAST_SECRET_KEY": "k"},
			want: config.Config{Listen: ":9000", DataDir: "/var/lib/hf", LogFormat: "json", LogLevel: "info", ShutdownTimeout: 10 * time.Second, SyncInterval: time.Minute, SyncConcurrency: 32, SendTimeout: 6 * time.Minute, SecretKey: "k"},
		},
		{
			name: "a flag wins over the environment",
			args: []string{"--listen", "127.0.0.1:1", "--database-url", "postgres://h/db"},
			env:  map[string]string{"HOLDFAST_LISTEN": ":9000", "HOLDFAST_DATABASE_URL": "postgres://other/db"},
			want: config.Config{Listen: "127.0.0.1:1", DataDir: "./holdfast-data", DatabaseURL: "postgres://h/db", LogFormat: "text", LogLevel: "info", ShutdownTimeout: 10 * time.Second, SyncInterval: time.Minute, SyncConcurrency: 32, SendTimeout: 6 * time.Minute},
		},
		{name: "bad log format", args: []string{"--log-format", "xml"}, wantErr: "--log-format"},
		{name: "bad log level", env: map[string]string{"HOLDFAST_LOG_LEVEL": "loud"}, wantErr: "--log-level"},
		{name: "bad listen", args: []string{"--listen", "8080"}, wantErr: "--listen"},
		{name: "bad database url", args: []string{"--database-url", "mysql://x"}, wantErr: "--database-url"},
		{name: "bad duration in environment", env: map[string]string{"HOLDFAST_SHUTDOWN_TIMEOUT": "soon"}, wantErr: "HOLDFAST_SHUTDOWN_TIMEOUT"},
		{name: "empty data dir", args: []string{"--data-dir", " "}, wantErr: "--data-dir"},
		{
			name: "sync and send settings from the environment",
			env:  map[string]string{"HOLDFAST_SYNC_INTERVAL": "5m", "HOLDFAST_SYNC_CONCURRENCY": "256", "HOLDFAST_SEND_TIMEOUT": "30s"},
			want: config.Config{Listen: "127.0.0.1:8080", DataDir: "./holdfast-data", LogFormat: "text", LogLevel: "info", ShutdownTimeout: 10 * time.Second, SyncInterval: 5 * time.Minute, SyncConcurrency: 256, SendTimeout: 30 * time.Second},
		},
		{name: "sync interval too short", args: []string{"--sync-interval", "10ms"}, wantErr: "--sync-interval"},
		{name: "no sync concurrency", env: map[string]string{"HOLDFAST_SYNC_CONCURRENCY": "0"}, wantErr: "--sync-concurrency"},
		{name: "bad sync concurrency", env: map[string]string{"HOLDFAST_SYNC_CONCURRENCY": "many"}, wantErr: "HOLDFAST_SYNC_CONCURRENCY"},
		{name: "send timeout too long", args: []string{"--send-timeout", "2h"}, wantErr: "--send-timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c config.Config
			fs, finish := config.NewFlagSet("serve", config.FlagsStore|config.FlagsServe, &c, func(k string) string { return tt.env[k] }, io.Discard)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := finish()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("finish() = %v, want an error naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("finish() = %v", err)
			}
			if c != tt.want {
				t.Errorf("config = %+v, want %+v", c, tt.want)
			}
		})
	}
}
