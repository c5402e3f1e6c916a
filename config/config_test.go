package config_test

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/config"
	"github.com/holdfast/holdfast/health"
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
		{name: "resolved follow-up without a relay", args: []string{"--notify-resolved"}, wantErr: "--notify-resolved"},
		{
			name: "cluster settings from the environment",
			env:  map[string]string{"HOLDFAST_NODE": "node-a", "HOLDFAST_CLUSTER_LEASE": "3s"},
			want: config.Config{Listen: "127.0.0.1:8080", DataDir: "./holdfast-data", LogFormat: "text", LogLevel: "info", ShutdownTimeout: 10 * time.Second, SyncInterval: time.Minute, SyncConcurrency: 32, SendTimeout: 6 * time.Minute, Node: "node-a", ClusterLease: 3 * time.Second},
		},
		{name: "short cluster lease", env: map[string]string{"HOLDFAST_CLUSTER_LEASE": "10ms"}, wantErr: "--cluster-lease"},
		{name: "no sync concurrency", env: map[string]string{"HOLDFAST_SYNC_CONCURRENCY": "0"}, wantErr: "--sync-concurrency"},
		{name: "bad sync concurrency", env: map[string]string{"HOLDFAST_SYNC_CONCURRENCY": "many"}, wantErr: "HOLDFAST_SYNC_CONCURRENCY"},
		{name: "send timeout too long", args: []string{"--send-timeout", "2h"}, wantErr: "--send-timeout"},
		{
			name: "providers and public URL",
			args: []string{"--public-url", "https://mail.example.com/hf/", "--graph-url", "http://127.0.0.1:8025/graph"},
			env: map[string]string{
				"HOLDFAST_MICROSOFT_LOGIN_URL": "http://127.0.0.1:8025/microsoft-login/", "HOLDFAST_GOOGLE_OAUTH_URL": "http://127.0.0.1:8025/google-oauth",
				"HOLDFAST_GMAIL_URL": "http://127.0.0.1:8025/gmail", "HOLDFAST_GRAPH_URL": "http://ignored",
				"HOLDFAST_MICROSOFT_CLIENT_ID": "ms-id", "HOLDFAST_MICROSOFT_CLIENT_SECRET": "ms-secret",
				"HOLDFAST_GOOGLE_CLIENT_ID": "g-id", "HOLDFAST_GOOGLE_CLIENT_SECRET": "g-secret",
			},
			want: config.Config{
				Listen: "127.0.0.1:8080", DataDir: "./holdfast-data", LogFormat: "text", LogLevel: "info", ShutdownTimeout: 10 * time.Second, SyncInterval: time.Minute, SyncConcurrency: 32, SendTimeout: 6 * time.Minute,
				PublicURL: "https://mail.example.com/hf", MicrosoftLoginURL: "http://127.0.0.1:8025/microsoft-login", GraphURL: "http://127.0.0.1:8025/graph",
				GoogleOAuthURL: "http://127.0.0.1:8025/google-oauth", GmailURL: "http://127.0.0.1:8025/gmail",
				MicrosoftClientID: "ms-id", MicrosoftClientSecret: "ms-secret", GoogleClientID: "g-id", GoogleClientSecret: "g-secret",
			},
		},
		{name: "bad public url", args: []string{"--public-url", "mail.example.com"}, wantErr: "--public-url"},
		{name: "public url with a query", args: []string{"--public-url", "https://mail.example.com/?a=1"}, wantErr: "--public-url"},
		{name: "bad microsoft login url", env: map[string]string{"HOLDFAST_MICROSOFT_LOGIN_URL": "ftp://login"}, wantErr: "--microsoft-login-url"},
		{name: "bad graph url", args: []string{"--graph-url", "/graph"}, wantErr: "--graph-url"},
		{name: "bad google oauth url", env: map[string]string{"HOLDFAST_GOOGLE_OAUTH_URL": "oauth2.googleapis.com"}, wantErr: "--google-oauth-url"},
		{name: "bad gmail url", args: []string{"--gmail-url", "https://user:pw@gmail"}, wantErr: "--gmail-url"},
		{name: "client secret without id", env: map[string]string{"HOLDFAST_GOOGLE_CLIENT_SECRET": "s"}, wantErr: "HOLDFAST_GOOGLE_CLIENT_ID"},
		{
			name: "microsoft tenant ID from the environment, lower-cased",
			env:  map[string]string{"HOLDFAST_MICROSOFT_TENANT": "8EAEF023-2B34-4DA1-9BAA-8BC8C9D6A490"},
			want: config.Config{Listen: "127.0.0.1:8080", DataDir: "./holdfast-data", LogFormat: "text", LogLevel: "info", ShutdownTimeout: 10 * time.Second, SyncInterval: time.Minute, SyncConcurrency: 32, SendTimeout: 6 * time.Minute,
				MicrosoftTenant: "8eaef023-2b34-4da1-9baa-8bc8c9d6a490"},
		},
		{
			name: "microsoft tenant flag wins over the environment",
			args: []string{"--microsoft-tenant", "organizations"},
			env:  map[string]string{"HOLDFAST_MICROSOFT_TENANT": "consumers"},
			want: config.Config{Listen: "127.0.0.1:8080", DataDir: "./holdfast-data", LogFormat: "text", LogLevel: "info", ShutdownTimeout: 10 * time.Second, SyncInterval: time.Minute, SyncConcurrency: 32, SendTimeout: 6 * time.Minute,
				MicrosoftTenant: "organizations"},
		},
		{
			name: "microsoft tenant domain",
			args: []string{"--microsoft-tenant", " Contoso.onmicrosoft.com "},
			want: config.Config{Listen: "127.0.0.1:8080", DataDir: "./holdfast-data", LogFormat: "text", LogLevel: "info", ShutdownTimeout: 10 * time.Second, SyncInterval: time.Minute, SyncConcurrency: 32, SendTimeout: 6 * time.Minute,
				MicrosoftTenant: "contoso.onmicrosoft.com"},
		},
		{name: "empty microsoft tenant", args: []string{"--microsoft-tenant", ""}, wantErr: "--microsoft-tenant"},
		{name: "microsoft tenant of one label", env: map[string]string{"HOLDFAST_MICROSOFT_TENANT": "contoso"}, wantErr: "--microsoft-tenant"},
		{name: "microsoft tenant with a path", args: []string{"--microsoft-tenant", "common/oauth2"}, wantErr: "--microsoft-tenant"},
		{name: "microsoft tenant as a URL", args: []string{"--microsoft-tenant", "https://login.microsoftonline.com/common"}, wantErr: "--microsoft-tenant"},
		{name: "microsoft tenant, bad GUID", args: []string{"--microsoft-tenant", "8eaef023-2b34-4da1-9baa-8bc8c9d6a49g"}, wantErr: "--microsoft-tenant"},
		{name: "microsoft tenant, bad domain", args: []string{"--microsoft-tenant", "-contoso.com"}, wantErr: "--microsoft-tenant"},
		{
			name: "notifications",
			args: []string{"--notify-from", "holdfast <no-reply@example.com>", "--notify-resolved"},
			env:  map[string]string{"HOLDFAST_NOTIFY_SMTP_URL": "smtps://u:pw@relay.example.com", "HOLDFAST_TEMPLATES_DIR": "."},
			want: config.Config{
				Listen: "127.0.0.1:8080", DataDir: "./holdfast-data", LogFormat: "text", LogLevel: "info", ShutdownTimeout: 10 * time.Second, SyncInterval: time.Minute, SyncConcurrency: 32, SendTimeout: 6 * time.Minute,
				NotifySMTPURL: "smtps://u:pw@relay.example.com", NotifyFrom: "holdfast <no-reply@example.com>", TemplatesDir: ".", NotifyResolved: true,
			},
		},
		{name: "notify url not smtp", args: []string{"--notify-smtp-url", "http://u:hunter2@relay", "--notify-from", "a@b.c"}, wantErr: "--notify-smtp-url"},
		{name: "notify url unparsable", args: []string{"--notify-smtp-url", "smtp://u:hunter2@relay:port", "--notify-from", "a@b.c"}, wantErr: "--notify-smtp-url"},
		{name: "notify without from", env: map[string]string{"HOLDFAST_NOTIFY_SMTP_URL": "smtp://u:hunter2@relay"}, wantErr: "--notify-from"},
		{name: "notify bad from", args: []string{"--notify-smtp-url", "smtp://relay", "--notify-from", "not an address"}, wantErr: "--notify-from"},
		{name: "templates dir missing", args: []string{"--templates-dir", "/nonexistent/holdfast"}, wantErr: "--templates-dir"},
		{
			name: "health engine settings",
			args: []string{"--health-confirm-span", "40s", "--health-bucket", "2s"},
			env:  map[string]string{"HOLDFAST_HEALTH_NOTICE_GRACE": "20s", "HOLDFAST_HEALTH_KEEPALIVE": "1m", "HOLDFAST_HEALTH_BUCKET": "5s"},
			want: config.Config{
				Listen: "127.0.0.1:8080", DataDir: "./holdfast-data", LogFormat: "text", LogLevel: "info", ShutdownTimeout: 10 * time.Second, SyncInterval: time.Minute, SyncConcurrency: 32, SendTimeout: 6 * time.Minute,
				HealthConfirmSpan: 40 * time.Second, HealthNoticeGrace: 20 * time.Second, HealthKeepAlive: time.Minute, HealthBucket: 2 * time.Second,
			},
		},
		{name: "confirm span too short", args: []string{"--health-confirm-span", "5s"}, wantErr: "--health-confirm-span"},
		{name: "confirm span within the detector's reaction", args: []string{"--health-confirm-span", "90s"}, wantErr: "--health-confirm-span"},
		{name: "notice grace too long", env: map[string]string{"HOLDFAST_HEALTH_NOTICE_GRACE": "13h"}, wantErr: "--health-notice-grace"},
		{name: "keep-alive too short", args: []string{"--health-keepalive", "1s"}, wantErr: "--health-keepalive"},
		{name: "bucket too long", args: []string{"--health-bucket", "2m"}, wantErr: "--health-bucket"},
		{name: "close window too short", env: map[string]string{"HOLDFAST_HEALTH_CLOSE_WINDOW": "1s"}, wantErr: "--health-close-window"},
		{name: "bad bucket in environment", env: map[string]string{"HOLDFAST_HEALTH_BUCKET": "often"}, wantErr: "HOLDFAST_HEALTH_BUCKET"},
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
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("finish() = %v; it shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("finish() = %v", err)
			}
			want := tt.want
			if want.PublicURL == "" {
				want.PublicURL = "http://" + want.Listen
				if strings.HasPrefix(want.Listen, ":") {
					want.PublicURL = "http://localhost" + want.Listen
				}
				want.MicrosoftLoginURL, want.GraphURL = config.DefaultMicrosoftLoginURL, config.DefaultGraphURL
				want.GoogleOAuthURL, want.GmailURL = config.DefaultGoogleOAuthURL, config.DefaultGmailURL
			}
			if want.MicrosoftTenant == "" {
				want.MicrosoftTenant = config.DefaultMicrosoftTenant
			}
			if want.HealthConfirmSpan == 0 {
				d := health.DefaultConfig()
				want.HealthConfirmSpan, want.HealthNoticeGrace, want.HealthKeepAlive, want.HealthBucket = d.ConfirmSpan, d.NoticeGrace, d.KeepAlive, d.Bucket
			}
			if want.HealthCloseWindow == 0 {
				want.HealthCloseWindow = health.DefaultConfig().CloseWindow
			}
			if want.HealthSettle == 0 {
				want.HealthSettle = health.DefaultConfig().Settle
			}
			if want.ClusterLease == 0 {
				want.ClusterLease = 30 * time.Second
			}
			if c != want {
				t.Errorf("config = %+v, want %+v", c, want)
			}
		})
	}
}

func TestRedirectURL(t *testing.T) {
	t.Parallel()
	var c config.Config
	fs, finish := config.NewFlagSet("serve", config.FlagsStore|config.FlagsServe, &c, func(string) string { return "" }, io.Discard)
	if err := fs.Parse([]string{"--listen", "127.0.0.1:9000"}); err != nil {
		t.Fatal(err)
	}
	if err := finish(); err != nil {
		t.Fatal(err)
	}
	if got, want := c.RedirectURL(), "http://127.0.0.1:9000/oauth/callback"; got != want {
		t.Errorf("RedirectURL() = %q, want %q", got, want)
	}
}

// TestSecretsNotInErrors: a bad setting's error never quotes a client
// secret or a URL's user information.
func TestSecretsNotInErrors(t *testing.T) {
	t.Parallel()
	env := map[string]string{"HOLDFAST_GMAIL_URL": "https://user:hunter2@gmail", "HOLDFAST_MICROSOFT_CLIENT_SECRET": "s3cr3t-value"}
	var c config.Config
	fs, finish := config.NewFlagSet("serve", config.FlagsStore|config.FlagsServe, &c, func(k string) string { return env[k] }, io.Discard)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	err := finish()
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("finish() = %v, want an error without the password", err)
	}
	delete(env, "HOLDFAST_GMAIL_URL")
	c = config.Config{}
	fs, finish = config.NewFlagSet("serve", config.FlagsStore|config.FlagsServe, &c, func(k string) string { return env[k] }, io.Discard)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := finish(); err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("finish() = %v, want an error without the secret", err)
	}
}
