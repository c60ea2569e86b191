package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/internal/version"
	"github.com/llenergymeasure/llem/pkg/archive/server"
	"github.com/llenergymeasure/llem/pkg/archive/store"
	"github.com/llenergymeasure/llem/pkg/stats"
)

// archiveCmd is `llem archive`: run a results archive (docs/sharing.md).
// It is a subcommand of llem, not a second binary: the server needs the
// same record types, consistency checks (config hash, stats, report
// figures) as llem itself, and one binary keeps client and server the same
// version.
type archiveCmd struct {
	Serve   archiveServeCmd   `cmd:"" help:"Serve an archive: the HTTP API (push, query, statistics) and the browse page."`
	Token   archiveTokenCmd   `cmd:"" help:"Create, list and revoke the archive's API tokens."`
	Migrate archiveMigrateCmd `cmd:"" help:"Bring the archive database's schema up to date (serve does it too unless --no-migrate)."`
}

// archiveDB names the database of every archive command.
type archiveDB struct {
	DB string `name:"db" env:"LLEM_ARCHIVE_DB" default:"llem-archive.db" help:"Archive database: a SQLite file path (created if missing) or postgres://user@host/db."`
}

func (a archiveDB) open(ctx context.Context) (store.Store, error) {
	st, err := store.Open(ctx, a.DB)
	if err != nil {
		return nil, errs.WithHint(err, "check --db (LLEM_ARCHIVE_DB): a writable SQLite file path, or a reachable postgres:// URL")
	}
	return st, nil
}

// openMigrated opens the database and checks (or brings) its schema up to
// date.
func (a archiveDB) openMigrated(ctx context.Context, migrate bool) (store.Store, error) {
	st, err := a.open(ctx)
	if err != nil {
		return nil, err
	}
	if migrate {
		if _, err := st.Migrate(ctx); err != nil {
			st.Close()
			return nil, fmt.Errorf("archive: migrate %s: %w", st.Kind(), err)
		}
	}
	v, err := st.SchemaVersion(ctx)
	if err == nil && v == 0 {
		err = store.ErrNotMigrated
	}
	if err != nil {
		st.Close()
		return nil, errs.WithHint(err, "run llem archive migrate --db …")
	}
	return st, nil
}

type archiveServeCmd struct {
	archiveDB
	Listen     string        `default:"127.0.0.1:8080" help:"Address to listen on (port 0: any free port, printed on start)."`
	TLSCert    string        `name:"tls-cert" type:"existingfile" help:"TLS certificate (PEM); with --tls-key the archive serves HTTPS. Without them, put a TLS reverse proxy in front (docs/sharing.md)."`
	TLSKey     string        `name:"tls-key" type:"existingfile" help:"TLS private key (PEM)."`
	PublicRead bool          `name:"public-read" help:"Let anyone query and browse without a token (pushing always needs a write token)."`
	TrustProxy bool          `name:"trust-proxy" help:"Take client addresses from X-Forwarded-For (only behind a proxy that sets it)."`
	MaxBody    int64         `name:"max-body" default:"33554432" help:"Largest request body in bytes; larger is 413."`
	MaxRecords int           `name:"max-records" default:"1000" help:"Most records in one push; more is 413."`
	AnonRate   int           `name:"anonymous-rate" default:"300" help:"Requests per minute per address without a token (with --public-read)."`
	NoMigrate  bool          `name:"no-migrate" help:"Refuse to start on an outdated schema instead of migrating it."`
	LogFormat  string        `name:"log-format" default:"json" enum:"json,text" help:"Access log format on stderr: json or text (log/slog)."`
	Shutdown   time.Duration `default:"10s" help:"How long in-flight requests get to finish on SIGTERM."`
}

func (c *archiveServeCmd) Run(ctx context.Context, stdio *IO) error {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errs.BadInput(errors.New("archive serve: --tls-cert and --tls-key go together"), "give both, or neither and a TLS reverse proxy (docs/sharing.md)")
	}
	st, err := c.openMigrated(ctx, !c.NoMigrate)
	if err != nil {
		return err
	}
	defer st.Close()
	var h slog.Handler = slog.NewJSONHandler(stdio.Stderr, nil)
	if c.LogFormat == "text" {
		h = slog.NewTextHandler(stdio.Stderr, nil)
	}
	srv := server.New(st, server.Options{MaxBodyBytes: c.MaxBody, MaxRecords: c.MaxRecords, PublicRead: c.PublicRead,
		AnonymousRatePerMin: c.AnonRate, TrustProxy: c.TrustProxy, Version: version.String(), Logger: slog.New(h),
		Stats: stats.Options{Resamples: stats.DefaultResamples, Seed: stats.DefaultSeed, Level: stats.DefaultLevel}})
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return errs.WithHint(fmt.Errorf("archive serve: %w", err), "pick another --listen address (port 0 for any free one)")
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 2 * time.Minute, WriteTimeout: 5 * time.Minute,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	scheme := "http"
	served := make(chan error, 1)
	if c.TLSCert != "" {
		scheme = "https"
		go func() { served <- hs.ServeTLS(ln, c.TLSCert, c.TLSKey) }()
	} else {
		go func() { served <- hs.Serve(ln) }()
	}
	fmt.Fprintf(stdio.Stderr, "llem archive: serving %s://%s (%s database, %s reads)\n", scheme, ln.Addr(), st.Kind(), map[bool]string{true: "public", false: "token-only"}[c.PublicRead])
	select {
	case err = <-served:
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), c.Shutdown)
		defer cancel()
		err = hs.Shutdown(shut)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

type archiveMigrateCmd struct {
	archiveDB
}

func (c *archiveMigrateCmd) Run(ctx context.Context, stdio *IO) error {
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	before, _ := st.SchemaVersion(ctx)
	after, err := st.Migrate(ctx)
	if err != nil {
		return fmt.Errorf("archive migrate: %w", err)
	}
	fmt.Fprintf(stdio.Stdout, "%s schema version %d (was %d)\n", st.Kind(), after, before)
	return nil
}

type archiveTokenCmd struct {
	Create archiveTokenCreateCmd `cmd:"" help:"Create a token and print it once (only its hash is stored)."`
	List   archiveTokenListCmd   `cmd:"" help:"List tokens (names, scopes, rates; never the secrets)."`
	Revoke archiveTokenRevokeCmd `cmd:"" help:"Revoke a token by ID or name; it stops working at once."`
}

type archiveTokenCreateCmd struct {
	archiveDB
	Name  string `arg:"" help:"Who or what the token is for (unique; shown in access logs)."`
	Scope string `default:"read" enum:"read,write" help:"read (query, browse) or write (also push)."`
	Rate  int    `default:"600" help:"Requests per minute this token may make (0: unlimited)."`
}

func (c *archiveTokenCreateCmd) Run(ctx context.Context, stdio *IO) error {
	if c.Rate < 0 {
		return errs.BadInput(fmt.Errorf("archive token create: --rate %d", c.Rate), "use 0 (unlimited) or more")
	}
	st, err := c.openMigrated(ctx, true)
	if err != nil {
		return err
	}
	defer st.Close()
	secret, hash, err := server.NewToken()
	if err != nil {
		return err
	}
	t, err := st.CreateToken(ctx, store.Token{Name: c.Name, Scope: c.Scope, RatePerMin: c.Rate}, hash)
	if err != nil {
		return errs.BadInput(fmt.Errorf("archive token create: %w", err), "pick another name (llem archive token list)")
	}
	fmt.Fprintf(stdio.Stderr, "token %d %q (%s scope, %d requests/min) created; it is shown once, store it now:\n", t.ID, t.Name, t.Scope, t.RatePerMin)
	fmt.Fprintln(stdio.Stdout, secret)
	return nil
}

type archiveTokenListCmd struct {
	archiveDB
	JSON bool `help:"Print JSON."`
}

func (c *archiveTokenListCmd) Run(ctx context.Context, stdio *IO) error {
	st, err := c.openMigrated(ctx, false)
	if err != nil {
		return err
	}
	defer st.Close()
	ts, err := st.Tokens(ctx)
	if err != nil {
		return err
	}
	if c.JSON {
		if ts == nil {
			ts = []store.Token{}
		}
		enc := json.NewEncoder(stdio.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ts)
	}
	w := tabwriter.NewWriter(stdio.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tSCOPE\tRATE/MIN\tCREATED\tREVOKED")
	for _, t := range ts {
		rev := "-"
		if t.RevokedAt != nil {
			rev = t.RevokedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%s\t%s\n", t.ID, t.Name, t.Scope, t.RatePerMin, t.CreatedAt.Format(time.RFC3339), rev)
	}
	return w.Flush()
}

type archiveTokenRevokeCmd struct {
	archiveDB
	Token string `arg:"" help:"The token's ID or name (llem archive token list)."`
}

func (c *archiveTokenRevokeCmd) Run(ctx context.Context, stdio *IO) error {
	st, err := c.openMigrated(ctx, false)
	if err != nil {
		return err
	}
	defer st.Close()
	t, err := st.RevokeToken(ctx, c.Token)
	if errors.Is(err, store.ErrNotFound) {
		return errs.BadInput(fmt.Errorf("archive token revoke: %w", err), "llem archive token list shows the tokens")
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdio.Stdout, "token %d %q revoked at %s\n", t.ID, t.Name, t.RevokedAt.Format(time.RFC3339))
	return nil
}
